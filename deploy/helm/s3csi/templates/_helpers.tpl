{{/* The driver name: the CSIDriver object, GetPluginInfo and the PVs' spec.csi.driver. */}}
{{- define "s3csi.driverName" -}}s3.csi.s3csi.io{{- end -}}

{{- define "s3csi.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "s3csi.labels" -}}
app.kubernetes.io/name: s3csi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The flags every s3csi command shares. */}}
{{- define "s3csi.logArgs" -}}
- --log-format={{ .Values.logFormat }}
{{- if eq .Values.logLevel "debug" }}
- --debug
{{- end }}
{{- end -}}

{{/* S3 endpoint and region flags of `s3csi driver`. */}}
{{- define "s3csi.s3Args" -}}
{{- with .Values.s3.endpointUrl }}
- --s3-endpoint-url={{ . }}
{{- end }}
{{- with .Values.s3.region }}
- --s3-region={{ . }}
{{- end }}
{{- end -}}

{{/* Driver-level static credentials from awsAccessSecret (keys key_id and access_key). */}}
{{- define "s3csi.awsAccessSecretEnv" -}}
{{- with .Values.awsAccessSecret.name }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: key_id
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: access_key
{{- end }}
{{- end -}}

{{/* The restricted-profile security context of the unprivileged containers (uid 1000 of the image). */}}
{{- define "s3csi.restrictedPodSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "s3csi.restrictedContainerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* The Mountpoint Pods' priority class name, empty for none. */}}
{{- define "s3csi.mountpointPriorityClass" -}}
{{- .Values.mountpointPods.priorityClass.name -}}
{{- end -}}

{{/* Metrics (docs/observability.md). The --metrics-address of a process: its port on every interface, or
empty (no endpoint) with metrics.enabled false. Called with (dict "root" $ "port" N). */}}
{{- define "s3csi.metricsArgs" -}}
- --metrics-address={{ if .root.Values.metrics.enabled }}:{{ .port }}{{ end }}
{{- end -}}
{{/* The container port named metrics, when the endpoint exists. */}}
{{- define "s3csi.metricsPort" -}}
{{- if .root.Values.metrics.enabled }}
- name: metrics
  containerPort: {{ .port }}
{{- end }}
{{- end -}}
{{/* The pod annotations the Prometheus scrape configurations of the kubernetes-pods kind look for. */}}
{{- define "s3csi.metricsAnnotations" -}}
{{- if and .root.Values.metrics.enabled .root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}
