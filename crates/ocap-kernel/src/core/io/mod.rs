//! IO channels: byte streams from the outside world offered to a subcluster's vats as kernel
//! services (host-surface.md §6, seeds 001 and 002).
//!
//! Each channel is a kernel service whose kref is persisted per subcluster and channel name
//! (`kv: io.<sid>.<name>`), so references a vat keeps in baggage still work after a restart.
//! It is handed only to the subcluster's bootstrap vat, under the channel's name; it cannot be
//! obtained by name from anywhere else (gap G6). Lifecycle:
//! - created when the subcluster launches, before any vat starts; removed if the launch fails;
//! - destroyed when the subcluster ends by any path (terminate, last vat gone, reset, stop),
//!   once the kernel is idle, so messages already queued to it are settled first;
//! - re-created for persisted subclusters at boot, before their vats start. A channel that
//!   cannot come back answers every call with a rejection naming why.

pub mod socket;

use std::sync::Arc;

use super::{KernelCore, KernelError, KernelService, ServiceReply};
use crate::config::{ClusterConfig, IoConfig, IoDirection};
use crate::refs::KRef;
use crate::smallcaps::Value;
use socket::SocketChannel;

/// The service a vat talks to for one channel.
pub(crate) struct IoService {
    name: String,
    direction: IoDirection,
    channel: Result<Arc<SocketChannel>, String>,
}

impl KernelService for IoService {
    fn invoke(&self, method: &str, args: Vec<Value>, reply: ServiceReply) {
        let channel = match &self.channel {
            Ok(c) => c,
            Err(why) => {
                return reply.reject(Value::error(format!("IO channel \"{}\" is unavailable: {why}", self.name)))
            }
        };
        match method {
            "read" if self.direction == IoDirection::Out => {
                reply.reject(Value::error(format!("IO channel \"{}\" is write-only", self.name)))
            }
            "write" if self.direction == IoDirection::In => {
                reply.reject(Value::error(format!("IO channel \"{}\" is read-only", self.name)))
            }
            "read" => channel.read(reply),
            "write" => match args.first() {
                Some(Value::String(s)) => channel.write(s, reply),
                _ => reply.reject(Value::error(format!("IO channel \"{}\": write expects a string", self.name))),
            },
            other => reply.reject(Value::error(format!("IO channel \"{}\" has no method {other:?}", self.name))),
        }
    }
}

/// The live channels of one subcluster.
pub(crate) struct SubclusterIo {
    pub(crate) channels: Vec<(String, KRef, Option<Arc<SocketChannel>>)>,
}

fn kv_key(sid: &str, name: &str) -> String {
    format!("io.{sid}.{name}")
}

impl KernelCore {
    fn register_io_service(&mut self, sid: &str, name: &str, service: IoService) -> Result<KRef, KernelError> {
        let kref = self.pinned_kernel_object(&kv_key(sid, name))?;
        self.services.insert(kref, Arc::new(service));
        Ok(kref)
    }

    /// Creates a subcluster's channels; all of them, or none.
    pub(crate) fn create_io_channels(
        &mut self,
        sid: &str,
        config: &ClusterConfig,
    ) -> Result<Vec<(String, KRef)>, KernelError> {
        let mut made = Vec::new();
        for (name, io) in config.io.iter().flatten() {
            match open_channel(name, io) {
                Ok(ch) => {
                    let ch = Arc::new(ch);
                    let svc = IoService {
                        name: name.clone(),
                        direction: io.direction.unwrap_or_default(),
                        channel: Ok(ch.clone()),
                    };
                    let kref = self.register_io_service(sid, name, svc)?;
                    made.push((name.clone(), kref, Some(ch)));
                }
                Err(why) => {
                    self.io.insert(sid.to_owned(), SubclusterIo { channels: made });
                    self.destroy_io_channels(sid)?;
                    return Err(KernelError::Io(why));
                }
            }
        }
        let out = made.iter().map(|(n, k, _)| (n.clone(), *k)).collect();
        if !made.is_empty() {
            self.io.insert(sid.to_owned(), SubclusterIo { channels: made });
        }
        Ok(out)
    }

    /// Closes a subcluster's channels and forgets their services.
    pub(crate) fn destroy_io_channels(&mut self, sid: &str) -> Result<(), KernelError> {
        let Some(io) = self.io.remove(sid) else { return Ok(()) };
        for (name, kref, ch) in io.channels {
            if let Some(ch) = ch {
                ch.close();
            }
            self.services.remove(&kref);
            self.unit(|k| {
                k.store.delete_kv(&kv_key(sid, &name))?;
                // The channel's object is orphaned, not left to the kernel: the kernel never
                // frees an object it owns (a registered service lives as long as the kernel),
                // so an unpinned channel kept its row with refcount 0 forever, one per IO
                // subcluster ever launched or tried. Orphaned, it is deleted at the end of
                // this unit, or, if a vat of another subcluster was handed it, once that vat
                // drops it; a send to it meanwhile is rejected as to any orphan.
                if k.store.object(kref)?.is_some() {
                    k.store.set_object_owner(kref, None)?;
                }
                if k.store.object(kref)?.is_some_and(|o| o.pins > 0) {
                    k.store.adjust_pins(kref, -1)?;
                    k.decref(kref)?;
                } else {
                    // Nothing to release, but it must still be examined by GC.
                    k.maybe_free.insert(kref);
                }
                Ok(())
            })?;
            tracing::info!("destroyed IO channel {name:?} of {sid}");
        }
        self.commit()
    }

    /// Destroys the channels of subclusters that have ended, once nothing is queued.
    pub(crate) fn destroy_ended_io(&mut self) -> Result<(), KernelError> {
        let ended: Vec<String> =
            self.io.keys().filter(|sid| matches!(self.store.subcluster(sid), Ok(None))).cloned().collect();
        for sid in ended {
            self.destroy_io_channels(&sid)?;
        }
        Ok(())
    }

    /// Re-creates the channels of every persisted subcluster (at boot, before vats start).
    /// A channel that cannot come back keeps its kref and rejects every call with the reason.
    pub fn restore_io_channels(&mut self) -> Result<Vec<(String, String)>, KernelError> {
        let mut failures = Vec::new();
        for rec in self.store.subclusters()? {
            let Ok(config) = serde_json::from_str::<ClusterConfig>(&rec.config) else { continue };
            let mut made = Vec::new();
            for (name, io) in config.io.iter().flatten() {
                let (channel, ch) = match open_channel(name, io) {
                    Ok(ch) => {
                        let ch = Arc::new(ch);
                        (Ok(ch.clone()), Some(ch))
                    }
                    Err(why) => {
                        tracing::error!("IO channel {name:?} of {} did not come back: {why}", rec.id);
                        failures.push((format!("{}.{name}", rec.id), why.clone()));
                        (Err(why), None)
                    }
                };
                let svc = IoService { name: name.clone(), direction: io.direction.unwrap_or_default(), channel };
                let kref = self.register_io_service(&rec.id, name, svc)?;
                made.push((name.clone(), kref, ch));
            }
            if !made.is_empty() {
                self.io.insert(rec.id.clone(), SubclusterIo { channels: made });
            }
        }
        Ok(failures)
    }

    /// Closes every channel without forgetting it (kernel stop): they come back at boot.
    pub(crate) fn close_all_io(&mut self) {
        for io in self.io.values() {
            for (_, _, ch) in &io.channels {
                if let Some(ch) = ch {
                    ch.close();
                }
            }
        }
        self.io.clear();
    }
}

fn open_channel(name: &str, io: &IoConfig) -> Result<SocketChannel, String> {
    match (io.kind.as_str(), io.path.as_deref()) {
        ("socket", Some(path)) => SocketChannel::listen(name, std::path::Path::new(path)),
        (kind, _) => Err(format!("IO channel {name:?}: type {kind:?} is not supported")),
    }
}
