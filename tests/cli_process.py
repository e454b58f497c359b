"""The real command line in a child process, for tests that signal it or run several at once.

`LAUNCH` is the `python -c` code that runs `hotpatch-audit` (its arguments follow it on the command line) with
Ctrl-C as a KeyboardInterrupt, as in a terminal, even when the test run itself has SIGINT ignored (a background
job of a non-interactive shell passes that on to its children, and Python then raises nothing on SIGINT).
"""

LAUNCH = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "sys.argv[0] = 'hotpatch-audit'; from hotpatch_audit.cli import main; main()")
