import sys

from neuromesh.cli import main

sys.exit(main())
