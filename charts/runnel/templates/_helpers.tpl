{{/*
Chart name, or nameOverride.
*/}}
{{- define "runnel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: <release>-<chart>, or <release> when it already
contains the chart name; truncated to 63 characters (DNS label limit).
*/}}
{{- define "runnel.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
<name>-<version> for the helm.sh/chart label.
*/}}
{{- define "runnel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels. app.kubernetes.io/component=operator keeps them disjoint
from the broker pods the operator creates, which carry
app.kubernetes.io/name=runnel and component=broker.
*/}}
{{- define "runnel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "runnel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Standard labels on every object the chart renders.
*/}}
{{- define "runnel.labels" -}}
helm.sh/chart: {{ include "runnel.chart" . }}
{{ include "runnel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: runnel
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "runnel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "runnel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Operator image: repository@digest, or repository:tag (tag defaults to appVersion).
*/}}
{{- define "runnel.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Broker image passed as --broker-image: brokerImage, or the operator's image.
*/}}
{{- define "runnel.brokerImage" -}}
{{- default (include "runnel.image" .) .Values.brokerImage }}
{{- end }}

{{/*
"true" when leader election is on: forced by replicaCount > 1.
*/}}
{{- define "runnel.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/*
Watched namespaces, de-duplicated, in the order given.
*/}}
{{- define "runnel.watchNamespaces" -}}
{{- .Values.watchNamespaces | uniq | toJson }}
{{- end }}

{{/*
The rules the operator needs in every namespace it watches (operator-contract.md,
"RBAC it needs"). Used by the ClusterRole (all namespaces) or by one Role per
watched namespace. No wildcards; keep in sync with tests/test_chart.py.
*/}}
{{- define "runnel.operatorRules" -}}
- apiGroups:
    - kafka.runnel.dev
  resources:
    - kafkaclusters
    - kafkatopics
    - kafkaconnects
    - kafkaconnectors
  verbs:
    - get
    - list
    - watch
    - patch
    - update
- apiGroups:
    - kafka.runnel.dev
  resources:
    - kafkaclusters/status
    - kafkatopics/status
    - kafkaconnects/status
    - kafkaconnectors/status
  verbs:
    - get
    - patch
    - update
- apiGroups:
    - kafka.runnel.dev
  resources:
    - kafkaclusters/finalizers
    - kafkatopics/finalizers
    - kafkaconnects/finalizers
    - kafkaconnectors/finalizers
  verbs:
    - update
- apiGroups:
    - ""
  resources:
    - configmaps
    - services
  verbs:
    - get
    - list
    - watch
    - create
    - patch
    - update
    - delete
- apiGroups:
    - ""
  resources:
    - pods
    - persistentvolumeclaims
  verbs:
    - get
    - list
    - watch
    - delete
- apiGroups:
    - ""
  resources:
    - events
  verbs:
    - create
    - patch
- apiGroups:
    - events.k8s.io
  resources:
    - events
  verbs:
    - create
    - patch
- apiGroups:
    - apps
  resources:
    - statefulsets
    - deployments
  verbs:
    - get
    - list
    - watch
    - create
    - patch
    - update
    - delete
- apiGroups:
    - policy
  resources:
    - poddisruptionbudgets
  verbs:
    - get
    - list
    - watch
    - create
    - patch
    - update
    - delete
{{- end }}
