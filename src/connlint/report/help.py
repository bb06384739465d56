"""The one-line ``help:`` that names the fix for a finding (shown by the text and SARIF outputs)."""

from __future__ import annotations

from connlint.checker import Finding

_FORMS = {
    "with": "use `with {call} as {var}:` (its `with` closes it)",
    "closing": "use `with contextlib.closing({call}) as {var}:` (its own `with` does not close it)",
    "async-with": "use `async with {call} as {var}:`",
    "async-with-await": "use `async with await {call} as {var}:`",
    "try-finally": "close it in `try: ... finally: await {var}.close()`",
    "pool-try-finally": "give it back in `try: ... finally: pool.putconn({var})`",
}


def help_text(finding: Finding) -> str:
    leak = finding.leak
    code = finding.code
    if code == "CNL010":
        return ("call `Session.remove()` when each request ends, e.g. in an "
                "`@app.teardown_appcontext` handler")
    if code == "CNL011":
        return "call `Session.remove()` in a `finally` around the thread's work"
    if leak is None:
        return ""
    if code == "CNL008":
        return "close it in a method of the class (`close()`, or `__exit__` to allow `with`)"
    if code == "CNL009":
        return ("close it in an `@app.teardown_appcontext` handler: "
                "`db = g.pop(name, None)`, then `db.close()` if it is not None")
    var = leak.var or "conn"
    call = f"{leak.api.api}(...)"
    if code == "CNL003":
        if leak.api.is_pool_checkout:
            return f"give it back to the pool in `finally`: `pool.putconn({var})`"
        return f"use `with contextlib.closing({call}) as {var}, {var}:` to keep the commit and close it"
    if code == "CNL006":
        return f"await the release: `await {var}.close()`"
    if code == "CNL007":
        return f"`yield {var}` instead of returning it, and close it after the yield"
    if code == "CNL101":
        return "release it in `finally` (or use the `with` form) so that an exception cannot skip it"
    if code == "CNL102":
        return f"put the code after `yield` in `try: yield {var} finally: ...`"
    if code == "CNL900":
        return "split the function, or raise `analysis-budget` in [tool.connlint]"
    if code == "CNL901":
        return "open it where it is used, or close it at exit (`atexit.register(conn.close)`)"
    form = _FORMS.get(leak.api.fix)
    if form is None:
        return "close it on every path, in `finally`"
    return form.format(call=call, var=var)
