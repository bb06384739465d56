import sys

from connlint.cli import main

sys.exit(main())
