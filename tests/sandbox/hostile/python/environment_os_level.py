# expect: ok
# Disarmed hook, os reached: the environment is empty, whatever the parent holds.
# prelude: disarm
outputs["n"] = len(OS["environ"])
outputs["secret"] = [ord(c) for c in OS["environ"].get("BCAI_TEST_SECRET", "")]
