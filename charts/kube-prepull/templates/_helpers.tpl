{{/*
Labels of every object: those of manifests/base (kustomization.yaml) and Helm's own. managed-by
stays kube-prepull, not Helm: the webhooks' objectSelector leaves objects labelled so alone, and
kube-prepull must never hold its own rollout.
*/}}
{{- define "kube-prepull.labels" -}}
app.kubernetes.io/name: kube-prepull
app.kubernetes.io/managed-by: kube-prepull
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* registry/repository:tag@digest; an empty tag is v<appVersion>. */}}
{{- define "kube-prepull.imageRef" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- if $image.registry }}{{ $image.registry }}/{{ end }}{{ $image.repository -}}
:{{ $image.tag | default (printf "v%s" $root.Chart.AppVersion) -}}
{{- if $image.digest }}@{{ $image.digest }}{{ end -}}
{{- end }}

{{/* Whether kube-prepull manages its certificates itself (a Secret, CA injection). */}}
{{- define "kube-prepull.selfManaged" -}}
{{- if eq .Values.certificates.mode "self-managed" }}true{{ end -}}
{{- end }}

{{/* The Secret the serving certificate is in. */}}
{{- define "kube-prepull.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "secret" }}{{ .Values.certificates.secret.name }}{{ else }}kube-prepull-tls{{ end -}}
{{- end }}

{{/*
A Prometheus Operator object from manifests/monitoring (files/ links to it: one source for kustomize
and the chart), in the release's namespace, with the chart's labels and the user's extra ones
(a Prometheus selects these objects by label). Arguments: the file, the extra labels, the root.
*/}}
{{- define "kube-prepull.monitoringObject" -}}
{{- $object := .root.Files.Get .file | fromYaml -}}
apiVersion: {{ $object.apiVersion }}
kind: {{ $object.kind }}
metadata:
  name: kube-prepull
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "kube-prepull.labels" .root | nindent 4 }}
    {{- with .labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- toYaml $object.spec | nindent 2 }}
{{- end }}
