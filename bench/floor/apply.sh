#!/bin/sh
# The floor of a full `flannel-wizard apply` (smoke test off) on the lab's fresh node: the same ten
# changes as the article makes them by hand, each written once, then the same read-backs. No journal,
# no backups, no rollback: what the wizard adds on top is what this floor measures.
# Run by bench/startup.py in a lab node of its own; not a test.
set -eu
R=${FW_TEST_ROOT:-}
P=/kube-centos/network
E=http://127.0.0.1:2379
export ETCDCTL_API=3

# 1. the network config in etcd (the article's `etcdctl mk`, with the v3 API flanneld 0.18+ reads)
etcdctl --endpoints "$E" put "$P/config" '{"Network": "172.30.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}' >/dev/null
# 2. flanneld's options, then its restart; it writes its lease to subnet.env
cat >"$R/etc/sysconfig/flanneld" <<EOT
# Flanneld configuration options
FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:2379"
FLANNEL_ETCD_PREFIX="/kube-centos/network"
# Any additional options that you want to pass
#FLANNEL_OPTIONS=""
FLANNEL_OPTIONS=""
EOT
systemctl restart flanneld
until [ -s "$R/run/flannel/subnet.env" ]; do sleep 0.01; done
. "$R/run/flannel/subnet.env"
# 3. docker's options from the lease (mk-docker-opts.sh -i), daemon.json with bip, mtu and the cgroup
#    driver in one write, the bridge moved onto the subnet, one restart of docker
cat >"$R/run/docker_opts.env" <<EOT
DOCKER_OPT_BIP="--bip=$FLANNEL_SUBNET"
DOCKER_OPT_IPMASQ="--ip-masq=true"
DOCKER_OPT_MTU="--mtu=$FLANNEL_MTU"
DOCKER_OPTS=" --bip=$FLANNEL_SUBNET --ip-masq=true --mtu=$FLANNEL_MTU"
EOT
cat >"$R/etc/docker/daemon.json" <<EOT
{
  "log-driver": "journald",
  "exec-opts": [
    "native.cgroupdriver=cgroupfs"
  ],
  "bip": "$FLANNEL_SUBNET",
  "mtu": $FLANNEL_MTU
}
EOT
ip addr flush dev docker0
ip addr add "$FLANNEL_SUBNET" dev docker0
ip link set docker0 mtu "$FLANNEL_MTU"
systemctl restart docker
# 4. kubelet already says cgroupfs in the lab's config.yaml; it restarts for docker's new driver
systemctl restart kubelet

. "$(dirname "$0")/readback.sh"
