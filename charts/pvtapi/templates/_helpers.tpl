{{/*
Chart name (nameOverride wins), at most 63 characters.
*/}}
{{- define "pvtapi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full resource name: fullnameOverride, else the release name when it already contains the chart
name, else <release>-<chart>. At most 63 characters (DNS label).
*/}}
{{- define "pvtapi.fullname" -}}
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
helm.sh/chart label value.
*/}}
{{- define "pvtapi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: never change across upgrades (a Deployment's selector is immutable). The
component label keeps the operator's Service, PDB and NetworkPolicy off the probe pods, which
carry app.kubernetes.io/name=pvtapi and app.kubernetes.io/component=probe.
*/}}
{{- define "pvtapi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pvtapi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Standard labels of every object.
*/}}
{{- define "pvtapi.labels" -}}
helm.sh/chart: {{ include "pvtapi.chart" . }}
{{ include "pvtapi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pvtapi
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "pvtapi.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pvtapi.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "pvtapi.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Operator image reference: repository@digest when a digest is set, else repository:tag.
*/}}
{{- define "pvtapi.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "pvtapi.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Image of the probe pods: probeImage, else the operator's own image.
*/}}
{{- define "pvtapi.probeImage" -}}
{{- default (include "pvtapi.image" .) .Values.probeImage }}
{{- end }}

{{/*
The operator's rules (operator/src/rbac.rs cluster_rules()): same order, same verbs. A test
compares them with the Rust list; change both together.
*/}}
{{- define "pvtapi.operatorRules" -}}
- apiGroups: ["pvtapi.io"]
  resources: ["privateapiconnectivitychecks"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["pvtapi.io"]
  resources: ["privateapiconnectivitychecks/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["get"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
Leader-election rules (operator/src/rbac.rs leader_election_rules()).
*/}}
{{- define "pvtapi.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "patch"]
{{- end }}

{{/*
PromQL label matchers of this release's series (without braces).
*/}}
{{- define "pvtapi.promSelector" -}}
{{- default (printf "job=%q" (include "pvtapi.fullname" .)) .Values.prometheusRule.selector }}
{{- end }}

{{/*
Guards against values that render but cannot work.
*/}}
{{- define "pvtapi.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas > 1 needs leaderElection.enabled=true: without it every replica would run every check" }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- fail "serviceAccount.create=false needs serviceAccount.name (an existing ServiceAccount)" }}
{{- end }}
{{- end }}
