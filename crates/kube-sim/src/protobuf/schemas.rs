//! Protobuf field tables of the built-in kinds client-go's typed clients
//! write: field number, JSON name, wire type, and whether the Go field is a
//! pointer (then a zero value is meaningful and kept, like `replicas: 0`).
//! Numbers follow the published `generated.proto` files of `k8s.io/api`.

/// How a field is encoded and turned into JSON.
#[derive(Clone, Copy)]
pub enum Ty {
    /// UTF-8 string.
    Str,
    /// Varint integer.
    Int,
    /// Varint bool.
    Bool,
    /// `meta.v1.Time` / `MicroTime` message; the zero time is JSON `null`.
    Time,
    /// `intstr.IntOrString` message.
    IntOrString,
    /// `meta.v1.FieldsV1`: raw JSON bytes in field 1.
    RawJson,
    /// `resource.Quantity` message: its string form in field 1.
    Quantity,
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>` (base64 in JSON).
    MapBytes,
    /// `map<string, Quantity>`.
    MapQuantity,
    /// A nested message.
    Msg(&'static [Field]),
    /// A message whose content the server ignores (a status the create
    /// resets): decoded as `{}` without looking inside.
    Opaque,
}

/// One field of a message.
#[derive(Clone, Copy)]
pub struct Field {
    /// Protobuf field number.
    pub num: u64,
    /// JSON name.
    pub name: &'static str,
    /// Encoding.
    pub ty: Ty,
    /// A repeated field (JSON array).
    pub repeated: bool,
    /// A Go pointer field: present means set, even to a zero value.
    pub keep_zero: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
        keep_zero: false,
    }
}

/// A pointer field: its zero value is kept.
const fn p(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        keep_zero: true,
        ..f(num, name, ty)
    }
}

const fn rep(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        repeated: true,
        ..f(num, name, ty)
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    p(6, "controller", Ty::Bool),
    p(7, "blockOwnerDeletion", Ty::Bool),
];

const MANAGED_FIELDS: &[Field] = &[
    f(1, "manager", Ty::Str),
    f(2, "operation", Ty::Str),
    f(3, "apiVersion", Ty::Str),
    f(4, "time", Ty::Time),
    f(6, "fieldsType", Ty::Str),
    f(7, "fieldsV1", Ty::RawJson),
    f(8, "subresource", Ty::Str),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(4, "selfLink", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    p(10, "deletionGracePeriodSeconds", Ty::Int),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    rep(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    rep(14, "finalizers", Ty::Str),
    rep(17, "managedFields", Ty::Msg(MANAGED_FIELDS)),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    p(5, "immutable", Ty::Bool),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    p(4, "immutable", Ty::Bool),
];

const NAMESPACE_SPEC: &[Field] = &[rep(1, "finalizers", Ty::Str)];
const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
];

const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrString),
    f(5, "nodePort", Ty::Int),
    p(6, "appProtocol", Ty::Str),
];

const SERVICE_SPEC: &[Field] = &[
    rep(1, "ports", Ty::Msg(SERVICE_PORT)),
    f(2, "selector", Ty::MapStr),
    f(3, "clusterIP", Ty::Str),
    f(4, "type", Ty::Str),
    rep(5, "externalIPs", Ty::Str),
    f(7, "sessionAffinity", Ty::Str),
    f(8, "loadBalancerIP", Ty::Str),
    rep(9, "loadBalancerSourceRanges", Ty::Str),
    f(10, "externalName", Ty::Str),
    f(11, "externalTrafficPolicy", Ty::Str),
    f(12, "healthCheckNodePort", Ty::Int),
    f(13, "publishNotReadyAddresses", Ty::Bool),
    p(17, "ipFamilyPolicy", Ty::Str),
    rep(18, "clusterIPs", Ty::Str),
    rep(19, "ipFamilies", Ty::Str),
    p(20, "allocateLoadBalancerNodePorts", Ty::Bool),
    p(21, "loadBalancerClass", Ty::Str),
    p(22, "internalTrafficPolicy", Ty::Str),
    p(23, "trafficDistribution", Ty::Str),
];

const SERVICE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SERVICE_SPEC)),
];

const LOCAL_OBJECT_REFERENCE: &[Field] = &[f(1, "name", Ty::Str)];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "fieldPath", Ty::Str),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "secrets", Ty::Msg(OBJECT_REFERENCE)),
    rep(3, "imagePullSecrets", Ty::Msg(LOCAL_OBJECT_REFERENCE)),
    p(4, "automountServiceAccountToken", Ty::Bool),
];

const LABEL_SELECTOR_REQUIREMENT: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    rep(3, "values", Ty::Str),
];

const LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", Ty::MapStr),
    rep(2, "matchExpressions", Ty::Msg(LABEL_SELECTOR_REQUIREMENT)),
];

const CONTAINER_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "hostPort", Ty::Int),
    f(3, "containerPort", Ty::Int),
    f(4, "protocol", Ty::Str),
    f(5, "hostIP", Ty::Str),
];

const ENV_VAR: &[Field] = &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)];

const RESOURCE_REQUIREMENTS: &[Field] = &[
    f(1, "limits", Ty::MapQuantity),
    f(2, "requests", Ty::MapQuantity),
];

const VOLUME_MOUNT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "readOnly", Ty::Bool),
    f(3, "mountPath", Ty::Str),
    f(4, "subPath", Ty::Str),
];

const CONTAINER: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "image", Ty::Str),
    rep(3, "command", Ty::Str),
    rep(4, "args", Ty::Str),
    f(5, "workingDir", Ty::Str),
    rep(6, "ports", Ty::Msg(CONTAINER_PORT)),
    rep(7, "env", Ty::Msg(ENV_VAR)),
    f(8, "resources", Ty::Msg(RESOURCE_REQUIREMENTS)),
    rep(9, "volumeMounts", Ty::Msg(VOLUME_MOUNT)),
    f(13, "terminationMessagePath", Ty::Str),
    f(14, "imagePullPolicy", Ty::Str),
    f(16, "stdin", Ty::Bool),
    f(17, "stdinOnce", Ty::Bool),
    f(18, "tty", Ty::Bool),
    f(20, "terminationMessagePolicy", Ty::Str),
];

const TOLERATION: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    f(3, "value", Ty::Str),
    f(4, "effect", Ty::Str),
    p(5, "tolerationSeconds", Ty::Int),
];

const POD_SPEC: &[Field] = &[
    rep(2, "containers", Ty::Msg(CONTAINER)),
    f(3, "restartPolicy", Ty::Str),
    p(4, "terminationGracePeriodSeconds", Ty::Int),
    p(5, "activeDeadlineSeconds", Ty::Int),
    f(6, "dnsPolicy", Ty::Str),
    f(7, "nodeSelector", Ty::MapStr),
    f(8, "serviceAccountName", Ty::Str),
    f(9, "serviceAccount", Ty::Str),
    f(10, "nodeName", Ty::Str),
    f(11, "hostNetwork", Ty::Bool),
    f(12, "hostPID", Ty::Bool),
    f(13, "hostIPC", Ty::Bool),
    rep(15, "imagePullSecrets", Ty::Msg(LOCAL_OBJECT_REFERENCE)),
    f(16, "hostname", Ty::Str),
    f(17, "subdomain", Ty::Str),
    f(19, "schedulerName", Ty::Str),
    rep(20, "initContainers", Ty::Msg(CONTAINER)),
    p(21, "automountServiceAccountToken", Ty::Bool),
    rep(22, "tolerations", Ty::Msg(TOLERATION)),
    f(24, "priorityClassName", Ty::Str),
    p(25, "priority", Ty::Int),
    p(30, "enableServiceLinks", Ty::Bool),
    p(31, "preemptionPolicy", Ty::Str),
];

const POD_TEMPLATE_SPEC: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(POD_SPEC)),
];

const ROLLING_UPDATE_DEPLOYMENT: &[Field] = &[
    p(1, "maxUnavailable", Ty::IntOrString),
    p(2, "maxSurge", Ty::IntOrString),
];

const DEPLOYMENT_STRATEGY: &[Field] = &[
    f(1, "type", Ty::Str),
    p(2, "rollingUpdate", Ty::Msg(ROLLING_UPDATE_DEPLOYMENT)),
];

const DEPLOYMENT_SPEC: &[Field] = &[
    p(1, "replicas", Ty::Int),
    p(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(3, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    f(4, "strategy", Ty::Msg(DEPLOYMENT_STRATEGY)),
    f(5, "minReadySeconds", Ty::Int),
    p(6, "revisionHistoryLimit", Ty::Int),
    f(7, "paused", Ty::Bool),
    p(9, "progressDeadlineSeconds", Ty::Int),
];

const DEPLOYMENT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(DEPLOYMENT_SPEC)),
    f(3, "status", Ty::Opaque),
];

const JOB_SPEC: &[Field] = &[
    p(1, "parallelism", Ty::Int),
    p(2, "completions", Ty::Int),
    p(3, "activeDeadlineSeconds", Ty::Int),
    p(4, "selector", Ty::Msg(LABEL_SELECTOR)),
    p(5, "manualSelector", Ty::Bool),
    f(6, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    p(7, "backoffLimit", Ty::Int),
    p(8, "ttlSecondsAfterFinished", Ty::Int),
    p(9, "completionMode", Ty::Str),
    p(10, "suspend", Ty::Bool),
    p(12, "backoffLimitPerIndex", Ty::Int),
    p(13, "maxFailedIndexes", Ty::Int),
    p(14, "podReplacementPolicy", Ty::Str),
    p(15, "managedBy", Ty::Str),
];

const JOB: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(JOB_SPEC)),
    f(3, "status", Ty::Opaque),
];

const JOB_TEMPLATE_SPEC: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(JOB_SPEC)),
];

const CRON_JOB_SPEC: &[Field] = &[
    f(1, "schedule", Ty::Str),
    p(2, "startingDeadlineSeconds", Ty::Int),
    f(3, "concurrencyPolicy", Ty::Str),
    p(4, "suspend", Ty::Bool),
    f(5, "jobTemplate", Ty::Msg(JOB_TEMPLATE_SPEC)),
    p(6, "successfulJobsHistoryLimit", Ty::Int),
    p(7, "failedJobsHistoryLimit", Ty::Int),
    p(8, "timeZone", Ty::Str),
];

const CRON_JOB: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(CRON_JOB_SPEC)),
    f(3, "status", Ty::Opaque),
];

const SCALE_SPEC: &[Field] = &[f(1, "replicas", Ty::Int)];
const SCALE_STATUS: &[Field] = &[f(1, "replicas", Ty::Int), f(2, "selector", Ty::Str)];

const SCALE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SCALE_SPEC)),
    f(3, "status", Ty::Msg(SCALE_STATUS)),
];

const PRIORITY_CLASS: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    // `value` has no omitempty in Go's JSON: zero is written.
    p(2, "value", Ty::Int),
    f(3, "globalDefault", Ty::Bool),
    f(4, "description", Ty::Str),
    p(5, "preemptionPolicy", Ty::Str),
];

const POLICY_RULE: &[Field] = &[
    rep(1, "verbs", Ty::Str),
    rep(2, "apiGroups", Ty::Str),
    rep(3, "resources", Ty::Str),
    rep(4, "resourceNames", Ty::Str),
    rep(5, "nonResourceURLs", Ty::Str),
];

const ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "rules", Ty::Msg(POLICY_RULE)),
];

const SUBJECT: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "apiGroup", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "namespace", Ty::Str),
];

const ROLE_REF: &[Field] = &[
    f(1, "apiGroup", Ty::Str),
    f(2, "kind", Ty::Str),
    f(3, "name", Ty::Str),
];

const ROLE_BINDING: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];

const POD_DISRUPTION_BUDGET_SPEC: &[Field] = &[
    p(1, "minAvailable", Ty::IntOrString),
    p(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    p(3, "maxUnavailable", Ty::IntOrString),
    p(4, "unhealthyPodEvictionPolicy", Ty::Str),
];

const POD_DISRUPTION_BUDGET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(POD_DISRUPTION_BUDGET_SPEC)),
    f(3, "status", Ty::Opaque),
];

const SERVICE_BACKEND_PORT: &[Field] = &[f(1, "name", Ty::Str), f(2, "number", Ty::Int)];
const INGRESS_SERVICE_BACKEND: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "port", Ty::Msg(SERVICE_BACKEND_PORT)),
];
const TYPED_LOCAL_OBJECT_REFERENCE: &[Field] = &[
    p(1, "apiGroup", Ty::Str),
    f(2, "kind", Ty::Str),
    f(3, "name", Ty::Str),
];
const INGRESS_BACKEND: &[Field] = &[
    p(3, "resource", Ty::Msg(TYPED_LOCAL_OBJECT_REFERENCE)),
    p(4, "service", Ty::Msg(INGRESS_SERVICE_BACKEND)),
];
const HTTP_INGRESS_PATH: &[Field] = &[
    f(1, "path", Ty::Str),
    f(2, "backend", Ty::Msg(INGRESS_BACKEND)),
    p(3, "pathType", Ty::Str),
];
const HTTP_INGRESS_RULE_VALUE: &[Field] = &[rep(1, "paths", Ty::Msg(HTTP_INGRESS_PATH))];
/// `IngressRuleValue` is embedded inline in `IngressRule` in JSON; its only
/// member is `http`, so the rule lists `http` at field 2's inner field 1.
const INGRESS_RULE_VALUE: &[Field] = &[p(1, "http", Ty::Msg(HTTP_INGRESS_RULE_VALUE))];
const INGRESS_RULE: &[Field] = &[f(1, "host", Ty::Str), f(2, "", Ty::Msg(INGRESS_RULE_VALUE))];
const INGRESS_TLS: &[Field] = &[rep(1, "hosts", Ty::Str), f(2, "secretName", Ty::Str)];
const INGRESS_SPEC: &[Field] = &[
    p(1, "defaultBackend", Ty::Msg(INGRESS_BACKEND)),
    rep(2, "tls", Ty::Msg(INGRESS_TLS)),
    rep(3, "rules", Ty::Msg(INGRESS_RULE)),
    p(4, "ingressClassName", Ty::Str),
];
const INGRESS: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(INGRESS_SPEC)),
    f(3, "status", Ty::Opaque),
];

/// The schema of a kind, by `apiVersion` and `kind`.
pub fn schema_for(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "Service") => SERVICE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("batch/v1", "Job") => JOB,
        ("batch/v1", "CronJob") => CRON_JOB,
        ("autoscaling/v1", "Scale") => SCALE,
        ("scheduling.k8s.io/v1", "PriorityClass") => PRIORITY_CLASS,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => ROLE_BINDING,
        ("policy/v1", "PodDisruptionBudget") => POD_DISRUPTION_BUDGET,
        ("networking.k8s.io/v1", "Ingress") => INGRESS,
        _ => return None,
    })
}

/// The kinds [`schema_for`] knows, for error messages.
pub const KNOWN: &str = "v1 Secret, ConfigMap, Namespace, Service, ServiceAccount; apps/v1 Deployment; batch/v1 Job, CronJob; autoscaling/v1 Scale; scheduling.k8s.io/v1 PriorityClass; rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding, ClusterRoleBinding; policy/v1 PodDisruptionBudget; networking.k8s.io/v1 Ingress";
