//! Routing and the JSON bodies of the admin API, shaped after Redpanda's admin API on
//! 9644 (`/v1/status/ready`, `/v1/brokers`, `/v1/cluster/health_overview`,
//! `/v1/partitions`, `/v1/node_config`) so operators' scripts and habits carry over.
//! Field names follow Redpanda's where the concept is the same; Sluice-only fields
//! (`kafka_address`, `high_watermark`, ...) are additions, never renames.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::AdminState;
use super::http::{HttpError, Response};
use crate::config::IoBackend;

/// Namespace of Kafka topics in Redpanda's partition paths (`kafka/<topic>/<p>`).
const NS: &str = "kafka";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Ready,
    Live,
    Brokers,
    HealthOverview,
    Partitions,
    TopicPartitions(String),
    Partition(String, i32),
    NodeConfig,
    Metrics,
    /// `GET /v1/transforms`.
    Transforms,
    /// `GET /v1/transforms/{name}`.
    DescribeTransform(String),
    /// `PUT /v1/transforms/{name}` (spec TOML in the body).
    DeployTransform(String),
    /// `DELETE /v1/transforms/{name}`.
    DeleteTransform(String),
    /// `POST /v1/transforms/{name}/pause` and `/resume`.
    PauseTransform(String, bool),
}

/// Maps a method and path to a route: 404 for an unknown path, 405 for a known path
/// with another method than GET.
pub(crate) fn route(method: &str, path: &str) -> Result<Route, HttpError> {
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let found = match segments.as_slice() {
        ["v1", "status", "ready"] => Some(Route::Ready),
        ["v1", "status", "live"] => Some(Route::Live),
        ["v1", "brokers"] => Some(Route::Brokers),
        ["v1", "cluster", "health_overview"] => Some(Route::HealthOverview),
        ["v1", "partitions"] => Some(Route::Partitions),
        ["v1", "partitions", NS, topic] if !topic.is_empty() => {
            Some(Route::TopicPartitions((*topic).to_owned()))
        }
        ["v1", "partitions", NS, topic, partition] if !topic.is_empty() => {
            let partition = partition
                .parse()
                .map_err(|_| HttpError::new(400, format!("invalid partition id {partition:?}")))?;
            Some(Route::Partition((*topic).to_owned(), partition))
        }
        ["v1", "node_config"] => Some(Route::NodeConfig),
        ["metrics"] => Some(Route::Metrics),
        ["v1", "transforms"] => Some(Route::Transforms),
        ["v1", "transforms", name] if !name.is_empty() => {
            let name = (*name).to_owned();
            return match method {
                "GET" => Ok(Route::DescribeTransform(name)),
                "PUT" => Ok(Route::DeployTransform(name)),
                "DELETE" => Ok(Route::DeleteTransform(name)),
                _ => Err(HttpError::new(
                    405,
                    format!("method {method} not allowed on {path}"),
                )),
            };
        }
        ["v1", "transforms", name, action @ ("pause" | "resume")] if !name.is_empty() => {
            if method != "POST" {
                return Err(HttpError::new(
                    405,
                    format!("method {method} not allowed on {path}"),
                ));
            }
            return Ok(Route::PauseTransform(
                (*name).to_owned(),
                *action == "pause",
            ));
        }
        _ => None,
    };
    let Some(found) = found else {
        return Err(HttpError::new(404, format!("no such endpoint: {path}")));
    };
    if method != "GET" {
        return Err(HttpError::new(
            405,
            format!("method {method} not allowed on {path}"),
        ));
    }
    Ok(found)
}

/// Answers a routed request.
pub(crate) async fn serve(state: &Arc<AdminState>, route: Route, body: Vec<u8>) -> Response {
    use crate::transforms::deploy;
    let answer = |result: Result<Value, deploy::Refused>| match result {
        Ok(value) => Response::json(200, &value),
        Err(refused) => Response::error(&HttpError::new(refused.status, refused.message)),
    };
    match route {
        Route::Transforms => Response::json(200, &deploy::list(&state.node).await),
        Route::DescribeTransform(name) => answer(deploy::describe(&state.node, &name).await),
        Route::DeployTransform(name) => {
            let Ok(source) = String::from_utf8(body) else {
                return Response::error(&HttpError::new(400, "the spec is not UTF-8"));
            };
            answer(deploy::deploy(&state.node, &name, source).await)
        }
        Route::DeleteTransform(name) => answer(deploy::delete(&state.node, &name).await),
        Route::PauseTransform(name, paused) => {
            answer(deploy::set_paused(&state.node, &name, paused).await)
        }
        Route::Ready => {
            if state.is_ready() {
                Response::json(200, &json!({ "status": "ready" }))
            } else {
                Response::json(503, &json!({ "status": "booting" }))
            }
        }
        Route::Live => Response::json(200, &json!({ "status": "live" })),
        Route::Brokers => Response::json(200, &json!([broker(state)])),
        Route::HealthOverview => Response::json(200, &health_overview(state).await),
        Route::Partitions => Response::json(200, &Value::Array(partitions(state, None).await)),
        Route::TopicPartitions(topic) => {
            if state.node.topic(&topic).is_none() {
                return Response::error(&HttpError::new(404, format!("unknown topic {topic}")));
            }
            Response::json(200, &Value::Array(partitions(state, Some(&topic)).await))
        }
        Route::Partition(topic, partition) => {
            let found = partitions(state, Some(&topic))
                .await
                .into_iter()
                .find(|p| p["partition_id"] == partition);
            match found {
                Some(p) => Response::json(200, &p),
                None => Response::error(&HttpError::new(
                    404,
                    format!("unknown partition {NS}/{topic}/{partition}"),
                )),
            }
        }
        Route::NodeConfig => Response::json(200, &node_config(state)),
        Route::Metrics => {
            let (content_type, body) = crate::metrics::scrape::scrape(&state.node).await;
            Response {
                status: 200,
                content_type,
                body,
                headers: Vec::new(),
            }
        }
    }
}

/// This node as Redpanda's `/v1/brokers` lists a broker.
fn broker(state: &AdminState) -> Value {
    let config = &state.node.config;
    json!({
        "node_id": config.node_id,
        "num_cores": state.node.shard_count(),
        "membership_status": "active",
        "is_alive": true,
        "version": concat!("v", env!("CARGO_PKG_VERSION")),
        "internal_rpc_address": config.rpc_addr.ip().to_string(),
        "internal_rpc_port": config.rpc_addr.port(),
        "kafka_address": state.kafka_addr.to_string(),
        "admin_address": state.admin_addr.to_string(),
        "rack": Value::Null,
    })
}

/// Sizes of the partitions the shards have open, asked of each shard. A partition
/// missing here is not served (its shard failed to open it, or is stopping).
async fn partition_sizes(state: &AdminState) -> HashMap<(Arc<str>, i32), u64> {
    let mut sizes = HashMap::new();
    for shard in 0..state.node.shard_count() {
        if let Ok(of_shard) = state
            .node
            .ask_shard(shard, |s| async move { s.partition_sizes() })
            .await
        {
            sizes.extend(of_shard.into_iter().map(|(t, p, size)| ((t, p), size)));
        }
    }
    sizes
}

async fn health_overview(state: &AdminState) -> Value {
    let node_id = state.node.config.node_id;
    let open = partition_sizes(state).await;
    let mut leaderless = Vec::new();
    for topic in state.node.catalog().topics() {
        for index in 0..topic.partitions.len() {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            if !open.contains_key(&(topic.name.clone(), index)) {
                leaderless.push(format!("{NS}/{}/{index}", topic.name));
            }
        }
    }
    let ready = state.is_ready();
    let mut reasons = Vec::new();
    if !ready {
        reasons.push("node_not_ready");
    }
    if !leaderless.is_empty() {
        reasons.push("leaderless_partitions");
    }
    json!({
        "is_healthy": reasons.is_empty(),
        "unhealthy_reasons": reasons,
        "controller_id": node_id,
        "all_nodes": [node_id],
        "nodes_down": [],
        "nodes_in_recovery_mode": [],
        "leaderless_count": leaderless.len(),
        "leaderless_partitions": leaderless,
        // One replica per partition until replication lands: nothing can lag behind.
        "under_replicated_count": 0,
        "under_replicated_partitions": [],
    })
}

/// Partitions of every topic, or of `only`, in topic then partition order.
async fn partitions(state: &AdminState, only: Option<&str>) -> Vec<Value> {
    let node_id = state.node.config.node_id;
    let sizes = partition_sizes(state).await;
    let topics = state.node.catalog().topics();
    let mut out = Vec::new();
    for topic in topics.iter().filter(|t| only.is_none_or(|o| *t.name == *o)) {
        for (index, shared) in topic.partitions.iter().enumerate() {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            let size = sizes.get(&(topic.name.clone(), index));
            out.push(json!({
                "ns": NS,
                "topic": &*topic.name,
                "partition_id": index,
                "core": shared.shard,
                "leader_id": if size.is_some() { node_id } else { -1 },
                "replicas": [{ "node_id": node_id, "core": shared.shard }],
                "status": if size.is_some() { "online" } else { "offline" },
                "high_watermark": shared.high_watermark(),
                "log_start_offset": shared.log_start_offset(),
                "size_bytes": size.copied().unwrap_or(0),
            }));
        }
    }
    out
}

/// The node's effective configuration, under the keys of `node.toml`.
fn node_config(state: &AdminState) -> Value {
    let c = &state.node.config;
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let topic_defaults: serde_json::Map<String, Value> = c
        .topic_defaults
        .describe_broker()
        .into_iter()
        .map(|d| (d.name.to_owned(), Value::String(d.value)))
        .collect();
    json!({
        "node_id": c.node_id,
        "data_dir": c.data_dir.display().to_string(),
        "kafka_addr": state.kafka_addr.to_string(),
        "rpc_addr": c.rpc_addr.to_string(),
        "admin_addr": state.admin_addr.to_string(),
        "seeds": c.seeds.iter().map(|s| format!("{}@{}", s.node_id, s.addr)).collect::<Vec<_>>(),
        "smp": c.smp.get(),
        "io_backend": match c.io_backend {
            IoBackend::Auto => "auto",
            IoBackend::Uring => "uring",
            IoBackend::Tokio => "tokio",
        },
        "socket_request_max_bytes": c.socket_request_max_bytes,
        "auto_create_topics_enable": c.auto_create_topics_enable,
        "num_partitions": c.num_partitions,
        "log_retention_check_interval_ms": millis(c.log_retention_check_interval),
        "offsets_topic_num_partitions": c.offsets_topic_num_partitions,
        "group_initial_rebalance_delay_ms": millis(c.group.initial_rebalance_delay),
        "group_min_session_timeout_ms": millis(c.group.min_session_timeout),
        "group_max_session_timeout_ms": millis(c.group.max_session_timeout),
        "offsets_retention_minutes": c.group.offsets_retention.as_secs() / 60,
        "topic_defaults": topic_defaults,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::catalog::{Catalog, MetaStore};
    use crate::config::NodeConfig;
    use crate::shard::NodeShared;

    /// A node with no shards running, and its shutdown switch.
    fn state(ready: bool) -> (Arc<AdminState>, tokio::sync::watch::Sender<bool>) {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let config = NodeConfig::default();
        let node = NodeShared::new(
            config.clone(),
            "cluster".to_owned(),
            Catalog::default(),
            MetaStore::new(&config.data_dir),
            0,
            stop_rx,
        );
        let state = AdminState {
            node: Arc::new(node),
            kafka_addr: config.kafka_addr,
            admin_addr: config.admin_addr,
            ready: AtomicBool::new(ready),
        };
        (Arc::new(state), stop)
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn readiness_is_503_until_ready_and_again_at_shutdown() {
        let (booting, _stop) = state(false);
        let response = block_on(serve(&booting, Route::Ready, Vec::new()));
        assert_eq!(response.status, 503);
        assert_eq!(response.body, r#"{"status":"booting"}"#);
        let (ready, stop) = state(true);
        assert_eq!(
            block_on(serve(&ready, Route::Ready, Vec::new())).status,
            200
        );
        assert_eq!(block_on(serve(&ready, Route::Live, Vec::new())).status, 200);
        stop.send(true).unwrap();
        assert_eq!(
            block_on(serve(&ready, Route::Ready, Vec::new())).status,
            503
        );
        assert_eq!(block_on(serve(&ready, Route::Live, Vec::new())).status, 200);
    }

    #[test]
    fn node_config_uses_node_toml_keys() {
        let (state, _stop) = state(true);
        let response = block_on(serve(&state, Route::NodeConfig, Vec::new()));
        let json: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(json["kafka_addr"], "127.0.0.1:9092");
        assert_eq!(json["admin_addr"], "127.0.0.1:9644");
        assert_eq!(json["io_backend"], "auto");
        assert_eq!(json["offsets_topic_num_partitions"], 50);
        assert_eq!(json["topic_defaults"]["log.cleanup.policy"], "delete");
    }

    #[test]
    fn routes_known_paths() {
        assert_eq!(route("GET", "/v1/status/ready"), Ok(Route::Ready));
        assert_eq!(route("GET", "/v1/brokers/"), Ok(Route::Brokers));
        assert_eq!(route("GET", "/metrics"), Ok(Route::Metrics));
        assert_eq!(
            route("GET", "/v1/partitions/kafka/orders"),
            Ok(Route::TopicPartitions("orders".to_owned()))
        );
        assert_eq!(
            route("GET", "/v1/partitions/kafka/orders/3"),
            Ok(Route::Partition("orders".to_owned(), 3))
        );
    }

    #[test]
    fn unknown_paths_are_404_and_other_methods_405() {
        assert_eq!(route("GET", "/v1/nope").unwrap_err().status, 404);
        assert_eq!(route("GET", "/").unwrap_err().status, 404);
        assert_eq!(route("POST", "/v1/nope").unwrap_err().status, 404);
        assert_eq!(route("POST", "/v1/brokers").unwrap_err().status, 405);
        assert_eq!(route("DELETE", "/metrics").unwrap_err().status, 405);
        assert_eq!(
            route("GET", "/v1/partitions/kafka/t/x").unwrap_err().status,
            400
        );
    }
}
