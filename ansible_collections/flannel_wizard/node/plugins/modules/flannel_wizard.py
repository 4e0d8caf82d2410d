#!/usr/bin/python
# Copyright: flannel-wizard authors

DOCUMENTATION = r"""
---
module: flannel_wizard
short_description: Configure a node's flannel pod network with flannel-wizard
version_added: "0.1.0"
description:
  - Runs flannel-wizard's engine on the target node from an answers file
    (inspect, plan, apply, verify; a journal for undo) and returns the engine's typed result.
  - The module runs the C(flannel-wizard) command of the node with C(--output json) and returns its
    C(result) object unchanged under O(result), so Ansible, the CLI and any other tool read one
    versioned schema (C(flannel-wizard schema --events)).
  - In check mode it runs C(flannel-wizard plan) and touches nothing; with C(--diff) every file change
    is returned in Ansible's before/after form, other changes (etcd, links, restarts) as prepared text.
  - A step that fails is rolled back by the engine before the task fails with the step's reason and fix.
  - Secrets are never options. The etcd password is named in the answers by reference
    (C(etcd.password_env) or C(etcd.password_file) on the node).
author:
  - flannel-wizard authors
requirements:
  - flannel-wizard installed on the node (the P(flannel_wizard.node.flannel_wizard#role) role installs it into a venv).
options:
  mode:
    description:
      - V(apply) configures the node (check mode plans instead).
      - V(check) runs every selected step's inspect and verify, changing nothing; the V(mesh) step proves the
        overlay to every other node holding a lease. The task fails when a problem is found.
      - V(undo) reverses every change the engine recorded on the node, newest first.
    type: str
    choices: [apply, check, undo]
    default: apply
  answers_file:
    description:
      - Path of an answers file on the node (see C(config.example.yaml)).
      - Exactly one of O(answers_file) and O(answers) is required unless O(mode=undo).
    type: path
  answers:
    description:
      - The answers inline, as the answers file's mapping. The module hands them to the engine on its standard
        input (C(flannel-wizard apply -)); it writes no answers file on the node.
    type: dict
  only:
    description: Run only these steps (C(--only)), in the engine's order.
    type: list
    elements: str
  skip:
    description: Run every step but these (C(--skip)).
    type: list
    elements: str
  ignore_preflight_errors:
    description: Preflight errors to turn into warnings, by name (C(--ignore-preflight-errors)); V(all) for every one.
    type: list
    elements: str
    default: []
  root:
    description: Prefix every file path the engine reads or writes with this directory (C(--root)).
    type: path
    default: /
  state_dir:
    description: Where the journal and backups are kept (C(--state-dir)); default C(/var/lib/flannel-wizard) under O(root).
    type: path
  executable:
    description: The C(flannel-wizard) command on the node; a name is looked up on C(PATH).
    type: path
    default: flannel-wizard
attributes:
  check_mode:
    support: full
    details: O(mode=apply) plans (C(flannel-wizard plan)); O(mode=check) changes nothing anyway; O(mode=undo) is skipped.
  diff_mode:
    support: full
notes:
  - C(changed) is true exactly when the engine made a change that is still on the node (in check mode, when it
    would make one).
"""

EXAMPLES = r"""
- name: Write the flannel network config to etcd once
  flannel_wizard.node.flannel_wizard:
    answers_file: /etc/flannel-wizard/answers.yaml
    only: [network, etcd]
  run_once: true

- name: Configure flanneld, the docker bridge and the cgroup driver
  flannel_wizard.node.flannel_wizard:
    answers_file: /etc/flannel-wizard/answers.yaml
    only: [preflight, network, flanneld, docker, cgroup]
    ignore_preflight_errors: [Swap]

- name: Prove the overlay from this node to every other one
  flannel_wizard.node.flannel_wizard:
    mode: check
    answers_file: /etc/flannel-wizard/answers.yaml
    only: [mesh]

- name: Answers inline
  flannel_wizard.node.flannel_wizard:
    answers:
      version: 1
      etcd:
        endpoints: ["https://10.0.0.5:2379"]
        prefix: /kube-centos/network
        password_file: /etc/flannel-wizard/etcd-password
      network:
        cidr: 172.30.0.0/16
        backend:
          type: vxlan

- name: Reverse everything the wizard did on the node
  flannel_wizard.node.flannel_wizard:
    mode: undo
"""

RETURN = r"""
result:
  description:
    - The engine's RunResult exactly as C(flannel-wizard apply --output json) prints it in its closing line;
      C(version) names the schema, which C(flannel-wizard schema --events) prints. Absent for O(mode=undo).
  returned: when the engine ran
  type: dict
  sample:
    version: 6
    mode: apply
    code: 0
    status: ok
    message: "done: 3 change(s)"
    planned: 0
    made: 3
    steps: []
steps:
  description: Each step's status (ok, warn, failed, skipped), in the order run.
  returned: when the engine ran
  type: dict
  sample: {"flanneld": "ok", "docker": "ok", "cgroup": "warn"}
changes:
  description: Every change of the run with its step, state (planned, pending, applied, rolled-back, ...), summary and diff.
  returned: when the engine ran
  type: list
  elements: dict
checks:
  description: Every check of the run with its step, status, message and detail (mesh checks name their C(subject) and C(hop)).
  returned: when the engine ran
  type: list
  elements: dict
fix:
  description: What to do about the step that failed, in the engine's words.
  returned: failed
  type: str
events:
  description: The undo's events as the engine emitted them.
  returned: O(mode=undo)
  type: list
  elements: dict
rc:
  description: The engine's exit code (0 done, 1 a step failed or a problem found, 2 bad input, 3 preflight failed).
  returned: always
  type: int
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text


def _lines(stdout):
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _summary(result):
    steps, changes, checks = {}, [], []
    for step in result.get("steps", []):
        steps[step["name"]] = step["status"]
        for change in step.get("changes", []):
            changes.append(dict(change, step=step["name"]))
        for check in step.get("checks", []):
            checks.append(dict(check, step=step["name"]))
    return steps, changes, checks


def _diffs(changes):
    out = []
    for change in changes:
        header = change.get("title") or change.get("summary", "")
        if change.get("before") is not None and change.get("after") is not None:
            out.append({"before": change["before"], "after": change["after"],
                        "before_header": header, "after_header": header})
        elif change.get("diff"):
            out.append({"prepared": f"{change.get('summary', '')}\n{change['diff']}"})
    return out


def _failure(result, mode):
    failed = [s for s in result.get("steps", []) if s.get("status") == "failed"]
    if mode == "check":
        problems = [f"{s['name']}: {c.get('message', '')}" for s in failed
                    for c in s.get("checks", []) if c.get("status") == "failed"]
        return result.get("message", "check found problems"), "\n".join(problems)
    if failed:
        step = failed[0]
        return f"{step['name']}: {step.get('message', '')}", step.get("detail", "")
    return result.get("message", "flannel-wizard failed"), ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="str", default="apply", choices=["apply", "check", "undo"]),
            answers_file=dict(type="path"),
            answers=dict(type="dict"),
            only=dict(type="list", elements="str"),
            skip=dict(type="list", elements="str"),
            ignore_preflight_errors=dict(type="list", elements="str", default=[]),
            root=dict(type="path", default="/"),
            state_dir=dict(type="path"),
            executable=dict(type="path", default="flannel-wizard"),
        ),
        mutually_exclusive=[("answers_file", "answers"), ("only", "skip")],
        supports_check_mode=True,
    )
    p = module.params
    mode = p["mode"]
    executable = p["executable"]
    if "/" not in executable:
        executable = module.get_bin_path(executable, required=True)

    node = ["--root", p["root"]] + (["--state-dir", p["state_dir"]] if p["state_dir"] else [])
    if mode == "undo":
        if module.check_mode:
            module.exit_json(changed=False, skipped=True, rc=0,
                             msg="undo has no plan to show; nothing was done in check mode")
        rc, stdout, stderr = module.run_command([executable, "undo", "--output", "json"] + node)
        events = _lines(stdout)
        undone = [e for e in events if e.get("kind") == "change" and e.get("status") in ("ok", "warn")]
        if rc != 0:
            module.fail_json(msg=to_text(stderr).strip() or "undo could not reverse every change",
                             rc=rc, events=events, changed=bool(undone))
        module.exit_json(changed=bool(undone), rc=rc, events=events,
                         msg=events[-1]["message"] if events else "undo done")

    if p["answers_file"] is None and p["answers"] is None:
        module.fail_json(msg=f"one of answers_file or answers is required for mode {mode}")
    command = "check" if mode == "check" else ("plan" if module.check_mode else "apply")
    source = p["answers_file"] or "-"
    argv = [executable, command, source, "--output", "json"] + node
    if command == "apply":
        argv.append("--yes")
    if p["only"]:
        argv += ["--only", ",".join(p["only"])]
    if p["skip"]:
        argv += ["--skip", ",".join(p["skip"])]
    if p["ignore_preflight_errors"]:
        argv += ["--ignore-preflight-errors", ",".join(p["ignore_preflight_errors"])]
    data = json.dumps(p["answers"]) if p["answers"] is not None else None
    rc, stdout, stderr = module.run_command(argv, data=data)

    closing = [line["result"] for line in _lines(stdout) if isinstance(line.get("result"), dict)]
    if not closing:
        # bad input or usage: the engine said what and where on stderr, before it ran anything
        module.fail_json(msg=to_text(stderr).strip() or "flannel-wizard printed no result", rc=rc,
                         cmd=argv, changed=False)
    result = closing[-1]
    steps, changes, checks = _summary(result)
    if command == "plan":
        changed = result.get("planned", 0) > 0
    elif command == "apply":
        changed = result.get("made", 0) > 0
    else:
        changed = False
    out = dict(changed=changed, rc=rc, result=result, steps=steps, changes=changes, checks=checks,
               msg=result.get("message", ""))
    if module._diff:
        out["diff"] = _diffs(c for c in changes if c.get("state") in ("planned", "pending", "applied"))
    if rc != 0:
        msg, fix = _failure(result, mode)
        module.fail_json(fix=fix, **dict(out, msg=msg))
    module.exit_json(**out)


if __name__ == "__main__":
    main()
