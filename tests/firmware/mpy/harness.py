# Executed by run.mjs inside MicroPython: run every test_* function of MODULES.
# (Not a pytest file: MODULES and the runtime come from the Node runner.)
import sys

failed = []
passed = 0
for modname in MODULES:  # noqa: F821 - set by run.mjs
    mod = __import__(modname)
    for name in sorted(dir(mod)):
        fn = getattr(mod, name)
        if not name.startswith("test_") or not callable(fn):
            continue
        try:
            fn()
            passed += 1
        except Exception as exc:  # report every failure, then fail the run
            failed.append(modname + "." + name)
            print("FAIL", modname + "." + name)
            sys.print_exception(exc)  # type: ignore[attr-defined]
print(f"micropython {sys.version}: {passed} passed, {len(failed)} failed")
if failed:
    raise AssertionError("failed under MicroPython: " + ", ".join(failed))
