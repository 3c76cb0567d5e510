{{/*
Shared names, labels and decisions of the chart.
*/}}

{{/* The base name of every object. */}}
{{- define "gantry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "gantry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component ("controller" or "datapath"), passed as (list $ "component"). */}}
{{- define "gantry.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ default $root.Chart.Name $root.Values.nameOverride }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image reference. */}}
{{- define "gantry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* ServiceAccount of the controller. */}}
{{- define "gantry.controllerServiceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-controller" (include "gantry.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* ServiceAccount of the datapath. */}}
{{- define "gantry.datapathServiceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- printf "%s-datapath" (include "gantry.fullname" .) -}}
{{- else -}}
{{- default "default" .Values.datapath.serviceAccountName -}}
{{- end -}}
{{- end -}}

{{/*
Whether the datapath DaemonSet runs: "true" or "". With `auto`, it runs
when any configured class uses the `local` provider, the only provider whose
traffic passes through the cluster's own nodes.
*/}}
{{- define "gantry.datapathEnabled" -}}
{{- $mode := .Values.datapath.enabled -}}
{{- if eq (toString $mode) "auto" -}}
{{- range .Values.classes -}}
{{- if eq .provider "local" -}}true{{- end -}}
{{- end -}}
{{- else if $mode -}}
true
{{- end -}}
{{- end -}}

{{/*
Whether a configured class announces addresses on the nodes' network:
"true" or "". Any `local` class whose mode is `l2` (the default mode) does:
its datapath holds addresses through Leases, puts them on an interface and
sends gratuitous ARP / unsolicited Neighbour Advertisements.
*/}}
{{- define "gantry.l2Enabled" -}}
{{- range .Values.classes -}}
{{- if and (eq .provider "local") (ne (toString (dig "mode" "l2" (default (dict) .settings))) "nodeAddresses") -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Checks the schema cannot express: class names are unique, and at most the
alphabetically first of several defaults would win (allowed, as the
controller resolves it, but never two classes of one name).
*/}}
{{- define "gantry.validate" -}}
{{- $seen := dict -}}
{{- range .Values.classes -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "classes: the name %q is used twice; every class needs its own name" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- end -}}
{{- if and (not .Values.controller.leaderElect) (gt (int .Values.controller.replicas) 1) -}}
{{- fail "controller.leaderElect: false needs controller.replicas: 1 (two controllers without a leader would fight over every balancer)" -}}
{{- end -}}
{{- end -}}
