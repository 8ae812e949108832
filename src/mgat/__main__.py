import sys

from mgat.cli import main

sys.exit(main())
