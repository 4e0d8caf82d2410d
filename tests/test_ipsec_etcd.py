"""An ipsec config through the etcd step against a real etcd: the PSK reaches etcd (flanneld reads it from
there) and no event shows it, not even the check that finds another config in its place."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests import lab
from tests.engine import run_steps
from wizard.events import StepEvent

PSK = "p" * 40 + "s" * 40 + "k" * 20  # 100 characters: flannel's ipsec wants at least 96


def test_the_ipsec_psk_goes_to_etcd_and_into_no_event(etcd: lab.Etcd, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_TEST_IPSEC_PSK", PSK)
    prefix = f"/fwtest-{uuid.uuid4().hex[:8]}/network"
    other = PSK[::-1]

    def someone_else_writes(event: StepEvent) -> None:
        # between the write and the step's own check: another config, with another PSK, takes the key
        if event.step == "etcd" and event.message.startswith(f"created {prefix}/config"):
            etcd.ctl("put", f"{prefix}/config", json.dumps(
                {"Network": "172.30.0.0/16", "Backend": {"Type": "ipsec", "PSK": other}}))

    text = (f'version: 1\netcd:\n  endpoints: ["{etcd.endpoint}"]\n  prefix: {prefix}\n'
            "network:\n  backend: {type: ipsec, psk_env: FW_TEST_IPSEC_PSK, udp_encap: true}\n")
    code, events = run_steps(text, tmp_path, ["etcd"], hook=someone_else_writes)
    failed = [e for e in events if e.status == "failed" and "intended config" in e.message]
    assert code == 1 and failed[0].message == f"{prefix}/config does not hold the intended config"
    assert '"PSK": "********"' in failed[0].detail
    said = "\n".join(f"{e.message}\n{e.detail}" for e in events)
    assert PSK not in said and other not in said
    # what was written first was the real key, as flanneld needs it
    code, events = run_steps(text.replace("prefix: ", "prefix: /again"), tmp_path, ["etcd"])
    assert code == 0
    assert json.loads(etcd.get(f"/again{prefix}/config"))["Backend"] == {"Type": "ipsec", "UDPEncap": True, "PSK": PSK}
    assert PSK not in "\n".join(f"{e.message}\n{e.detail}" for e in events)
