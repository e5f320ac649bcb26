#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder's image (Ubuntu, as root). The kit is in
# /autograder/source: install its requirements at the semester's exact versions and make the
# synthetic dataset, so that grading itself needs no network; bubblewrap is the jail that runs student
# code. See docs/grading.md.
set -euo pipefail
apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv bubblewrap
cd /autograder/source
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install -r requirements.txt -c constraints.txt
/autograder/venv/bin/python synthetic.py datasets/synthetic_speech_commands
