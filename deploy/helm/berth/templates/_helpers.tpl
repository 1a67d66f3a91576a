{{/* The name of every object: the release's, with the chart's name. */}}
{{- define "berth.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "berth.labels" -}}
{{ include "berth.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The Secret holding `htpasswd`, empty when there is none. */}}
{{- define "berth.htpasswdSecret" -}}
{{- if .Values.htpasswd.existingSecret -}}
{{- .Values.htpasswd.existingSecret -}}
{{- else if .Values.htpasswd.content -}}
{{- printf "%s-htpasswd" (include "berth.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The kubernetes.io/tls Secret, empty without TLS. */}}
{{- define "berth.tlsSecret" -}}
{{- if .Values.tls.enabled -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else if and .Values.tls.cert .Values.tls.key -}}
{{- printf "%s-tls" (include "berth.fullname" .) -}}
{{- else -}}
{{- fail "tls.enabled needs tls.existingSecret, or tls.cert and tls.key" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the S3 credentials, empty when there is none. */}}
{{- define "berth.s3Secret" -}}
{{- if .Values.s3.existingSecret -}}
{{- .Values.s3.existingSecret -}}
{{- else if and .Values.s3.accessKey .Values.s3.secretKey -}}
{{- printf "%s-s3" (include "berth.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the GCS key, empty when there is none. */}}
{{- define "berth.gcsSecret" -}}
{{- if .Values.gcs.existingSecret -}}
{{- .Values.gcs.existingSecret -}}
{{- else if .Values.gcs.keyJson -}}
{{- printf "%s-gcs" (include "berth.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the Azure account key, empty when there is none. */}}
{{- define "berth.azureSecret" -}}
{{- if .Values.azure.existingSecret -}}
{{- .Values.azure.existingSecret -}}
{{- else if .Values.azure.accountKey -}}
{{- printf "%s-azure" (include "berth.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Berth's config: .Values.config with the keys the pod's layout decides
(where it listens, where data and the mounted secrets are).
*/}}
{{- define "berth.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $storage := $cfg.storage | default (dict) -}}
{{- $_ := set $storage "rootDirectory" "/var/lib/berth" -}}
{{- if and (include "berth.gcsSecret" .) $storage.storageDriver -}}
{{- $_ := set $storage.storageDriver "keyfile" "/etc/berth/gcs/key.json" -}}
{{- end -}}
{{- $_ := set $cfg "storage" $storage -}}
{{- $http := $cfg.http | default (dict) -}}
{{- $_ := set $http "address" "0.0.0.0" -}}
{{- $_ := set $http "port" "5000" -}}
{{- if include "berth.htpasswdSecret" . -}}
{{- $auth := $http.auth | default (dict) -}}
{{- $_ := set $auth "htpasswd" (dict "path" "/etc/berth/auth/htpasswd") -}}
{{- $_ := set $http "auth" $auth -}}
{{- end -}}
{{- if include "berth.tlsSecret" . -}}
{{- $_ := set $http "tls" (dict "cert" "/etc/berth/tls/tls.crt" "key" "/etc/berth/tls/tls.key") -}}
{{- end -}}
{{- $_ := set $cfg "http" $http -}}
{{- toPrettyJson $cfg -}}
{{- end -}}

{{/* Several replicas only over shared storage and metadata. */}}
{{- define "berth.checkScaleOut" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- $driver := dig "storage" "storageDriver" "name" "" .Values.config -}}
{{- $cache := dig "storage" "cacheDriver" "name" "" .Values.config -}}
{{- if not (and (has $driver (list "s3" "gcs" "azure")) (has $cache (list "redis" "dynamodb"))) -}}
{{- fail "replicaCount above 1 needs config.storage.storageDriver (s3, gcs or azure) and config.storage.cacheDriver (redis or dynamodb): replicas cannot share a local volume" -}}
{{- end -}}
{{- end -}}
{{- end -}}
