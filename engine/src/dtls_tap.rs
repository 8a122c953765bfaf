//! Each session's SRTP keys, without forking str0m: a DTLS provider that wraps the
//! real one and passes everything through, keeping the keying material each DTLS
//! instance exports when its handshake completes.
//!
//! str0m makes a session's DTLS instance while its `Rtc` is built
//! (`RtcConfig::build`), and `new_dtls` is not told for which session: [`build`] puts
//! the session's [`KeySlot`] in a thread-local for the length of that call, and the
//! instance made inside it takes the slot. The slot is written once, on the shard's
//! thread (where str0m drives DTLS), and read there.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};
use str0m::crypto::{CryptoError, CryptoProvider};
use str0m::{Rtc, RtcConfig};

use crate::srtp::SrtpKeys;

/// Where one session's keys appear once its DTLS handshake is done.
pub type KeySlot = Arc<OnceLock<SrtpKeys>>;

thread_local! {
    /// The slot of the session whose `Rtc` this thread is building.
    static BUILDING: RefCell<Option<KeySlot>> = const { RefCell::new(None) };
}

/// The crypto provider str0m uses, with the tap in front of its DTLS.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        dtls_provider: &TAP,
        ..real()
    }
}

/// Builds the `Rtc` of `config` (whose crypto provider is [`provider`]), and the slot
/// where its SRTP keys will appear.
pub fn build(config: RtcConfig, now: Instant) -> (Rtc, KeySlot) {
    let slot = KeySlot::default();
    BUILDING.with(|b| *b.borrow_mut() = Some(slot.clone()));
    let rtc = config.build(now);
    BUILDING.with(|b| b.borrow_mut().take());
    (rtc, slot)
}

fn real() -> CryptoProvider {
    str0m::crypto::from_feature_flags()
}

#[derive(Debug)]
struct Tap;

static TAP: Tap = Tap;

impl DtlsProvider for Tap {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        real().dtls_provider.generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let inner = real()
            .dtls_provider
            .new_dtls(cert, now, dtls_version, mtu)?;
        // Built outside `build` (nobody wants its keys): no slot, nothing kept.
        let slot = BUILDING.with(|b| b.borrow_mut().take());
        Ok(Box::new(TapInstance { inner, slot }))
    }
}

#[derive(Debug)]
struct TapInstance {
    inner: Box<dyn DtlsInstance>,
    slot: Option<KeySlot>,
}

impl DtlsInstance for TapInstance {
    fn set_active(&mut self, active: bool) {
        self.inner.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.inner.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        let out = self.inner.poll_output(buf);
        if let DtlsOutput::KeyingMaterial(material, profile) = &out
            && let Some(slot) = &self.slot
        {
            // A session exports its keys once; a second export (none happens today)
            // would keep the first keys, which str0m also keeps.
            let _ = slot.set(SrtpKeys {
                material: material.to_vec(),
                profile: *profile,
                active: self.inner.is_active(),
            });
        }
        out
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.inner.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.inner.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.inner.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.inner.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.inner.close()
    }
}
