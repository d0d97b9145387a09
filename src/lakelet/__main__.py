import sys

from lakelet.cli.main import main

sys.exit(main())
