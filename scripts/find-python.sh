#!/usr/bin/env sh
# Prints the path of a Python 3.13 interpreter (the Lambda runtime's version), looking on
# PATH first and then in pyenv's versions; exits 1 with a hint when there is none.
want="3.13"
for candidate in "python$want" $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/$want*/bin/python$want 2>/dev/null | sort -V -r); do
    # A pyenv shim exists even when that version is not selected: ask it to run.
    if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != (3, 13))" 2>/dev/null; then
        command -v "$candidate" 2>/dev/null || echo "$candidate"
        exit 0
    fi
done
echo "python$want not found: install it (e.g. 'pyenv install $want') or put it on PATH" >&2
exit 1
