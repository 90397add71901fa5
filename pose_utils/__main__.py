import sys

from pose_course.cli import main

sys.exit(main())
