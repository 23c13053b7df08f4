import sys

from bayes_scaling_launch import main

sys.exit(main())
