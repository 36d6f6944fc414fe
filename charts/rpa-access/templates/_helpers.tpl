{{/* Labels of every object of the release. */}}
{{- define "rpa-access.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rpa-access
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "rpa-access.selectorLabels" . }}
{{- end }}

{{/* Labels selecting the operator's pods (same keys as config/manager). */}}
{{- define "rpa-access.selectorLabels" -}}
app.kubernetes.io/name: rpa-access
app.kubernetes.io/component: operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rpa-access.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
