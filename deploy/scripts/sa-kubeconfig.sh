#!/usr/bin/env bash
# Write a kubeconfig that authenticates as the operator's ServiceAccount.
#
# Runs the operator outside the cluster with exactly the permissions deploy/ grants it (the local
# control plane has no nodes, so this is how the operator runs there), and lets you check those
# permissions with `kubectl --kubeconfig OUT auth can-i ...`.
#
# Usage: deploy/scripts/sa-kubeconfig.sh OUT
# Environment (all optional):
#   KUBECONFIG       the admin kubeconfig to read the cluster from (kubectl's default otherwise)
#   KUBECTL          kubectl binary (default: kubectl)
#   NAMESPACE        ServiceAccount namespace (default: azure-edition-system)
#   SERVICE_ACCOUNT  ServiceAccount name (default: azure-edition-operator)
#   DURATION         token lifetime, e.g. 1h (default: 1h; the API server may cap it)
#
# The token comes from the TokenRequest API (`kubectl create token`): short-lived, bound to the
# ServiceAccount, never stored in a Secret. Apply deploy/base (or at least its RBAC) first.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
out=$1
kubectl=${KUBECTL:-kubectl}
namespace=${NAMESPACE:-azure-edition-system}
service_account=${SERVICE_ACCOUNT:-azure-edition-operator}
duration=${DURATION:-1h}

server=$("$kubectl" config view --minify --raw -o jsonpath='{.clusters[0].cluster.server}')
ca_data=$("$kubectl" config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
if [[ -z $ca_data ]]; then
  ca_file=$("$kubectl" config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  if [[ -n $ca_file ]]; then
    ca_data=$(base64 -w0 <"$ca_file")
  fi
fi
if [[ -z $server || -z $ca_data ]]; then
  echo "sa-kubeconfig: the current kubeconfig context has no server or CA to copy" >&2
  exit 1
fi
token=$("$kubectl" -n "$namespace" create token "$service_account" --duration="$duration")

umask 077
tmp=$(mktemp "${out}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster:
      server: ${server}
      certificate-authority-data: ${ca_data}
users:
  - name: ${namespace}-${service_account}
    user:
      token: ${token}
contexts:
  - name: ${service_account}
    context:
      cluster: cluster
      user: ${namespace}-${service_account}
      namespace: ${namespace}
current-context: ${service_account}
KUBECONFIG
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out (ServiceAccount $namespace/$service_account, token valid for $duration)" >&2
