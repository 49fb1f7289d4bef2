//! This kernel's remote identity in the store (remote-comms.md §1.1–1.2): the pure selection
//! rules are `remote::identity`; this file reads the `kv` keys and writes what they decide.

use super::{KernelCore, KernelError};
use crate::remote::identity::{
    select_identity, Identity, IdentityOptions, StoredIdentity, INCARNATION_ID, KEY_SEED, OCAP_URL_KEY, PEER_ID,
};
use crate::store::Store;

fn stored(store: &Store) -> Result<StoredIdentity, KernelError> {
    Ok(StoredIdentity {
        key_seed: store.get_kv(KEY_SEED)?,
        peer_id: store.get_kv(PEER_ID)?,
        ocap_url_key: store.get_kv(OCAP_URL_KEY)?,
        incarnation_id: store.get_kv(INCARNATION_ID)?,
    })
}

impl KernelCore {
    /// The kernel's identity, made and persisted (in one committed unit) if it has none yet,
    /// from `mnemonic` if given (§1.2's precedence and errors).
    pub fn provide_identity(&mut self, mnemonic: Option<&str>) -> Result<Identity, KernelError> {
        let stored = stored(&self.store)?;
        let selection = select_identity(&stored, IdentityOptions { mnemonic, key_seed: None })
            .map_err(|e| KernelError::Identity(e.to_string()))?;
        if !selection.writes.is_empty() {
            self.unit(|k| {
                for (key, value) in &selection.writes {
                    k.store.set_kv(key, value)?;
                }
                Ok(())
            })?;
            self.commit()?;
        }
        Ok(selection.identity)
    }

    /// This kernel's peer ID if it has an identity (`getStatus().remoteComms`): read as stored,
    /// so a damaged identity does not break the status.
    pub fn peer_id(&self) -> Result<Option<String>, KernelError> {
        Ok(self.store.get_kv(PEER_ID)?.filter(|p| !p.is_empty()))
    }

    /// This kernel's identity if it has one, without making it.
    pub fn identity(&self) -> Result<Option<Identity>, KernelError> {
        let stored = stored(&self.store)?;
        if stored.peer_id.as_deref().is_none_or(str::is_empty) {
            return Ok(None);
        }
        let selection =
            select_identity(&stored, IdentityOptions::default()).map_err(|e| KernelError::Identity(e.to_string()))?;
        Ok(Some(selection.identity))
    }
}
