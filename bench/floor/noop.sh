#!/bin/sh
# The floor of a no-op `flannel-wizard apply`: on a node already configured, only the read-backs.
# Run by bench/startup.py in the same lab node as the wizard, right after it; not a test.
set -eu
. "$(dirname "$0")/readback.sh"
