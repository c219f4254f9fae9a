import sys

from robot_mirror.cli import main

sys.exit(main())
