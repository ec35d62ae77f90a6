{{/* Labels every object carries (the same as deploy/base's, plus Helm's own). */}}
{{- define "aeo.labels" -}}
app.kubernetes.io/name: azure-edition-operator
app.kubernetes.io/part-of: azure-edition-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{/* The pod's selector: the same as deploy/base's, so the NetworkPolicy and Service agree. */}}
{{- define "aeo.selector" -}}
app.kubernetes.io/name: azure-edition-operator
app.kubernetes.io/component: operator
{{- end -}}

{{/* The image: by digest when one is set (what `make release` packages), else by tag. */}}
{{- define "aeo.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The operator's settings (deploy/base/config.env, then what the values choose). */}}
{{- define "aeo.clusterId" -}}
{{- $id := .Values.clusterId | toString -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" $id) -}}
{{- fail (printf "clusterId %q: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit (docs/install.md#cluster-id)" $id) -}}
{{- end -}}
{{- $id -}}
{{- end -}}

{{- define "aeo.config" -}}
AEO_NAMESPACES: ""
AEO_LOG_FORMAT: json
AEO_LOG_LEVEL: INFO
AEO_HEALTH_ADDRESS: 0.0.0.0:8080
AEO_METRICS_ADDRESS: 0.0.0.0:9090
AEO_METRICS_SECURE: "true"
AEO_METRICS_CERT_DIR: ""
AEO_PEERING: ""
AEO_PRIORITY: "0"
AEO_IN_GUEST_INTERVAL: "21600"
AEO_IN_GUEST_MIN_INTERVAL: "600"
AEO_SINGLE_TENANT: {{ .Values.tenancy.singleTenant | toString | quote }}
AEO_SMB_TRUST_BUNDLE: ""
AEO_CLUSTER_ID: {{ include "aeo.clusterId" . | quote }}
AZURE_CREDENTIAL_MODE: {{ .Values.credentials.mode | quote }}
PYTHONDONTWRITEBYTECODE: "1"
{{- range $key, $value := .Values.config }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
