"""The wizard's pages in order, and what each is called in the sidebar."""

from __future__ import annotations

# after Apply, the pages of the steps that only check, in the steps' order: mesh, then smoke
PAGES: tuple[str, ...] = ("preflight", "etcd", "network", "flanneld", "docker", "cgroup", "review", "apply", "mesh",
                          "smoke", "finish")
TITLES: dict[str, str] = {
    "preflight": "Welcome",
    "etcd": "etcd",
    "network": "Network",
    "flanneld": "flanneld",
    "docker": "Docker bridge",
    "cgroup": "cgroup driver",
    "review": "Review",
    "apply": "Apply",
    "mesh": "Mesh",
    "smoke": "Smoke test",
    "finish": "Finish",
}
ICONS: dict[str, str] = {
    "": "○", "current": "●", "ok": "✓", "warn": "⚠", "failed": "✗", "running": "…", "skipped": "–", "pending": "○",
}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
