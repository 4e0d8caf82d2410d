#!/bin/sh
# The read-backs an operator does by hand to see that a node is configured (the article's commands,
# and the ones its troubleshooting adds): the same facts the wizard's no-op run reads. Sourced by
# noop.sh and apply.sh; FW_TEST_ROOT is the node's root (the lab's --root), "" on a real node.
R=${FW_TEST_ROOT:-}
P=/kube-centos/network
E=http://127.0.0.1:2379
export ETCDCTL_API=3

# preflight: root, the binaries, the kernel's modules and switches, swap
[ "$(id -u)" = 0 ]
for b in flanneld dockerd kubelet kubectl iptables-save systemctl; do command -v "$b" >/dev/null || :; done
grep -E '^(br_netfilter|vxlan) ' /proc/modules >/dev/null || :
cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables >/dev/null 2>&1 || :
cat /proc/swaps >/dev/null
# network: the addresses, the default route's device and its MTU, the bridge
ip -o addr show >/dev/null
ip route show default >/dev/null
ip link show docker0 >/dev/null
# etcd: the server, the config under the prefix, the leases; the flanneld that reads them
etcdctl --endpoints "$E" endpoint status >/dev/null
etcdctl --endpoints "$E" get "$P/config" >/dev/null
etcdctl --endpoints "$E" get --prefix "$P/subnets/" >/dev/null
flanneld --version >/dev/null 2>&1
# flanneld: its options and the lease it wrote
cat "$R/etc/sysconfig/flanneld" "$R/run/flannel/subnet.env" >/dev/null
# docker: its options files and the bridge
cat "$R/run/docker_opts.env" "$R/etc/docker/daemon.json" >/dev/null
ip -4 addr show docker0 >/dev/null
# cgroup: the driver docker runs with and kubelet's
docker info --format '{{.CgroupDriver}}' >/dev/null
grep cgroupDriver "$R/var/lib/kubelet/config.yaml" >/dev/null
# mesh: what the firewall does to pod traffic
iptables-save -t filter >/dev/null
