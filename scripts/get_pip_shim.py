"""Stand-in for the get-pip script that ansible-test downloads.

ansible-test bootstraps pip in each sanity venv by downloading get-pip.py from
a host this machine cannot reach; it uses a cached copy when one exists. This
shim installs pip from the interpreter's own ensurepip and then installs what
ansible-test asked for from the configured package index.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
