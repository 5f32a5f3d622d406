{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "mlflow-ferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name for the operator's objects. */}}
{{- define "mlflow-ferry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "mlflow-ferry.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "mlflow-ferry.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The standard app.kubernetes.io labels. */}}
{{- define "mlflow-ferry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mlflow-ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlflow-ferry
{{- end }}

{{- define "mlflow-ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlflow-ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "mlflow-ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mlflow-ferry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ServiceAccount the operator's Jobs run as: it may only patch the resources' status. */}}
{{- define "mlflow-ferry.jobServiceAccountName" -}}
{{- default (printf "%s-job" (include "mlflow-ferry.fullname" .)) .Values.jobs.serviceAccountName }}
{{- end }}

{{/* The image for operator and Jobs; the tag defaults to the chart's appVersion. */}}
{{- define "mlflow-ferry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

