{{/* Name of the chart, at most 63 characters. */}}
{{- define "triggerbus.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects. */}}
{{- define "triggerbus.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of the metrics Service: the full name shortened to leave room for
the suffix within 63 characters. */}}
{{- define "triggerbus.metricsServiceName" -}}
{{- printf "%s-metrics" (include "triggerbus.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{/* Labels that select the pods: never change them across upgrades. */}}
{{- define "triggerbus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "triggerbus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: trigger-worker
{{- end -}}

{{- define "triggerbus.labels" -}}
{{ include "triggerbus.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "triggerbus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "triggerbus.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where the pod mounts what the chart gives the worker. */}}
{{- define "triggerbus.configDir" -}}/etc/triggerbus{{- end -}}
{{- define "triggerbus.scriptsDir" -}}/etc/triggerbus/scripts{{- end -}}
{{- define "triggerbus.credsDir" -}}/etc/triggerbus/nats-creds{{- end -}}
{{- define "triggerbus.tlsDir" -}}/etc/triggerbus/nats-tls{{- end -}}

{{/* subjects.prefix and subjects.queue of the worker config, with the
worker's defaults. */}}
{{- define "triggerbus.prefix" -}}
{{- $s := .Values.config.subjects | default dict -}}
{{- $s.prefix | default "trigger" -}}
{{- end -}}
{{- define "triggerbus.queue" -}}
{{- $s := .Values.config.subjects | default dict -}}
{{- $s.queue | default "trigger-workers" -}}
{{- end -}}

{{/* The durable event stream: <PREFIX>_EVENTS, the prefix upper-cased with
dots as underscores (pkg/subjects Scheme.EventStream). */}}
{{- define "triggerbus.eventStream" -}}
{{- printf "%s_EVENTS" (include "triggerbus.prefix" . | replace "." "_" | upper) -}}
{{- end -}}

{{/* Checks of values the schema cannot express. */}}
{{- define "triggerbus.validate" -}}
{{- $cfg := .Values.config | default dict -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled: choose one (KEDA creates its own HPA)" -}}
{{- end -}}
{{- if hasKey $cfg "nats" -}}
{{- fail "config.nats: set nats.url, nats.creds and nats.tls of the chart's values instead" -}}
{{- end -}}
{{- if hasKey $cfg "metrics" -}}
{{- fail "config.metrics: set metrics.port of the chart's values instead" -}}
{{- end -}}
{{- if hasKey $cfg "bundle" -}}
{{- fail "config.bundle: set bundle.source and bundle.trustedKeys of the chart's values instead" -}}
{{- end -}}
{{- if hasKey ($cfg.scripts | default dict) "dir" -}}
{{- fail "config.scripts.dir: the chart sets it; give the scripts in the scripts value" -}}
{{- end -}}
{{- if eq .Values.bundle.source "bundle" -}}
{{- if .Values.scripts -}}
{{- fail "scripts: not served with bundle.source bundle (push them with trigger-worker functions push)" -}}
{{- end -}}
{{- if $cfg.functions -}}
{{- fail "config.functions: not served with bundle.source bundle (push them with trigger-worker functions push)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.nats.tls.clientCert (not .Values.nats.tls.secret) -}}
{{- fail "nats.tls.clientCert needs nats.tls.secret" -}}
{{- end -}}
{{- $delivery := $cfg.delivery | default dict -}}
{{- if and .Values.autoscaling.keda.enabled (ne ($delivery.mode | default "auto") "durable") -}}
{{- fail "autoscaling.keda needs config.delivery.mode durable: it scales on the durable consumer's backlog" -}}
{{- end -}}
{{- end -}}

{{/* The worker's configuration file: config with the keys the chart owns. */}}
{{- define "triggerbus.workerConfig" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $nats := dict "url" .Values.nats.url -}}
{{- if .Values.nats.creds.secret -}}
{{- $_ := set $nats "creds" (printf "%s/%s" (include "triggerbus.credsDir" .) .Values.nats.creds.key) -}}
{{- end -}}
{{- if .Values.nats.tls.secret -}}
{{- $tls := dict "ca" (printf "%s/ca.crt" (include "triggerbus.tlsDir" .)) -}}
{{- if .Values.nats.tls.clientCert -}}
{{- $_ := set $tls "cert" (printf "%s/tls.crt" (include "triggerbus.tlsDir" .)) -}}
{{- $_ := set $tls "key" (printf "%s/tls.key" (include "triggerbus.tlsDir" .)) -}}
{{- end -}}
{{- $_ := set $nats "tls" $tls -}}
{{- end -}}
{{- $_ := set $cfg "nats" $nats -}}
{{- $_ := set $cfg "metrics" (dict "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port))) -}}
{{- $bundle := dict "source" .Values.bundle.source -}}
{{- if .Values.bundle.trustedKeys -}}
{{- $_ := set $bundle "trusted_keys" .Values.bundle.trustedKeys -}}
{{- end -}}
{{- $_ := set $cfg "bundle" $bundle -}}
{{- if and (eq .Values.bundle.source "files") .Values.scripts -}}
{{- $scripts := deepCopy ($cfg.scripts | default dict) -}}
{{- $_ := set $scripts "dir" (include "triggerbus.scriptsDir" .) -}}
{{- $_ := set $cfg "scripts" $scripts -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
