#!/usr/bin/env bash
# The common scripted prepull, as CI jobs and runbooks do it: apply a run-once DaemonSet whose init
# containers pull the images (then a pause container keeps each pod Ready), wait 15 s, poll
# `kubectl get ds` every 3 s until every scheduled pod is Ready, delete the DaemonSet.
# bench/scripted.ts runs it next to kube-prepull on the same cluster.
#
#   KUBECTL=/path/to/kubectl KUBECONFIG=... NAMESPACE=ns NAME=prepull-x \
#   IMAGES="registry/a:v2 registry/b:v2" [PULL_DELAY=5s] [TIMEOUT=900] bash bench/scripted-prepull.sh
#
# Prints "applied", "all-ready" and "done" on stdout as it gets there. PULL_DELAY sets the local
# cluster's simulated pull (sim.kube-prepull.io/pull-delay on the pod template), as kube-prepull's
# --prepull-pod-annotation does in the benchmark; empty for a real cluster.
set -euo pipefail

: "${KUBECTL:=kubectl}" "${NAMESPACE:?}" "${NAME:?}" "${IMAGES:?}" "${PULL_DELAY:=}" "${TIMEOUT:=900}"
k() { "$KUBECTL" --namespace "$NAMESPACE" "$@"; }

init_containers=""
i=0
for image in $IMAGES; do
  init_containers+="
      - name: pull-$i
        image: $image
        command: [\"sh\", \"-c\", \"true\"]
        resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 250m, memory: 32Mi}}"
  i=$((i + 1))
done
annotations="{}"
[ -n "$PULL_DELAY" ] && annotations="{sim.kube-prepull.io/pull-delay: \"$PULL_DELAY\"}"

k apply -f - >&2 <<YAML
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: $NAME
spec:
  selector:
    matchLabels: {app: $NAME}
  template:
    metadata:
      labels: {app: $NAME}
      annotations: $annotations
    spec:
      terminationGracePeriodSeconds: 0
      initContainers:$init_containers
      containers:
      - name: pause
        image: registry.k8s.io/pause:3.10
        resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 250m, memory: 32Mi}}
YAML
echo applied

sleep 15
deadline=$((SECONDS + TIMEOUT))
while :; do
  read -r ready desired < <(k get ds "$NAME" -o jsonpath='{.status.numberReady} {.status.desiredNumberScheduled}{"\n"}')
  if [ "${desired:-0}" -gt 0 ] && [ "${ready:-0}" -eq "$desired" ]; then break; fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "timed out: $ready of $desired pods Ready" >&2
    k delete ds "$NAME" --wait=false >&2
    exit 1
  fi
  sleep 3
done
echo all-ready

k delete ds "$NAME" >&2
echo done
