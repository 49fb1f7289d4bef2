//! The params of the control methods, checked strictly: a wrong shape is `INVALID_PARAMS`.

use ocap_kernel::{KRef, VatId};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::rpc::RpcError;

/// `{"id": "v1"}` (a vat) or `{"id": "s1"}` (a subcluster).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdParams {
    pub id: String,
}

/// `{"kref": "ko3"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KrefParams {
    pub kref: String,
}

/// `{"url": "ocap:…"}` (`redeemOcapURL`, `revokeOcapURL`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlParams {
    pub url: String,
}

/// `{"peerId": "12D3KooW…", "hints": [multiaddr…]}` (`registerLocationHints`,
/// `reconnectPeer`, `closeConnection`; hints optional where they mean nothing).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeerParams {
    pub peer_id: String,
    #[serde(default)]
    pub hints: Vec<String>,
}

/// `{"sql": "SELECT …"}` (`executeDBQuery`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlParams {
    pub sql: String,
}

/// `{"config": ClusterConfig}` (`launchSubcluster`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchParams {
    pub config: Json,
}

/// `{"ids": ["v1", …]}`, or no params for every vat (`reapVats`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReapParams {
    #[serde(default)]
    pub ids: Option<Vec<String>>,
}

/// `{"address": "127.0.0.1:8080"}`, or no params for a free loopback port (`startPanel`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PanelParams {
    #[serde(default)]
    pub address: Option<std::net::SocketAddr>,
}

/// Named params (`{"id": "v1"}`), as the JS kernel's methods take them. Positional params
/// (`["v1"]`) are refused with a message saying so: serde would otherwise read an array into
/// the fields in declaration order, an undocumented form that silently changes meaning when
/// a field is added. (`queueMessage` is the one positional method, `[target, method, args]`.)
pub fn parse<T: DeserializeOwned>(params: Json) -> Result<T, RpcError> {
    if params.is_array() {
        return Err(RpcError::invalid_params("this method takes named params (a JSON object), not an array"));
    }
    serde_json::from_value(params).map_err(|e| RpcError::invalid_params(e.to_string()))
}

/// "Empty" params: `[]` (the JS kernel's form), `{}` or none.
pub fn no_params(params: &Json) -> Result<(), RpcError> {
    match params {
        Json::Null => Ok(()),
        Json::Array(a) if a.is_empty() => Ok(()),
        Json::Object(o) if o.is_empty() => Ok(()),
        _ => Err(RpcError::invalid_params("this method takes no params ([])")),
    }
}

pub fn vat_id(s: &str) -> Result<VatId, RpcError> {
    s.parse().map_err(|e| RpcError::invalid_params(format!("{e}")))
}

pub fn kref(s: &str) -> Result<KRef, RpcError> {
    s.parse().map_err(|e| RpcError::invalid_params(format!("{e}")))
}
