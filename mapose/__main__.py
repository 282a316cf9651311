import sys

from mapose.cli import main

sys.exit(main())
