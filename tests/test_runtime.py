"""TensorFlow's CPU settings: oneDNN on whatever a process imports first, a user's own value kept."""

import os
import subprocess
import sys

from pose_utils import runtime

PROBE = (
    "import keras, os; from pose_utils.runtime import onednn_enabled; "
    "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), onednn_enabled())"
)


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (runtime.ONEDNN_VAR, runtime.KEEP_DEFAULTS_VAR)}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _probe(site_dir, env) -> str:
    """Import keras before pose_utils in a fresh interpreter that reads site_dir's .pth files."""
    code = f"import site; site.addsitedir({str(site_dir)!r}); " + PROBE
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_apply_sets_onednn_and_keeps_a_users_choice():
    env = {}
    runtime.apply(env)
    assert env == {runtime.ONEDNN_VAR: "1"}
    env = {runtime.ONEDNN_VAR: "0"}
    runtime.apply(env)
    assert env == {runtime.ONEDNN_VAR: "0"}
    env = {runtime.KEEP_DEFAULTS_VAR: "1"}
    runtime.apply(env)
    assert runtime.ONEDNN_VAR not in env


def test_pth_turns_onednn_on_before_keras_is_imported(tmp_path):
    path = runtime.install_pth(tmp_path)
    assert path == tmp_path / runtime.PTH_NAME and path.read_text() == runtime.PTH_LINE
    assert not list(tmp_path.glob(".*.tmp"))
    assert _probe(tmp_path, _clean_env()) == "1 True"


def test_pth_keeps_the_users_value(tmp_path):
    runtime.install_pth(tmp_path)
    assert _probe(tmp_path, _clean_env(TF_ENABLE_ONEDNN_OPTS="0")) == "0 False"


def test_pth_and_apply_follow_one_rule(tmp_path):
    """The .pth line is apply() written out: same result for every combination of the two variables."""
    for extra in ({}, {runtime.ONEDNN_VAR: "0"}, {runtime.KEEP_DEFAULTS_VAR: "1"},
                  {runtime.KEEP_DEFAULTS_VAR: "0"}):
        env = dict(extra)
        runtime.apply(env)
        scope = {"os": type("os", (), {"environ": dict(extra)})}
        exec(runtime.PTH_LINE.replace("import os; ", ""), scope)
        assert scope["os"].environ == env, extra
