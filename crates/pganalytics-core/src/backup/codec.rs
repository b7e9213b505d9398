//! How one object of a backup is stored: the raw bytes (a piece of a tar archive, or the
//! server's manifest, or a WAL segment) compressed with zstd, then encrypted and
//! authenticated with AES-256-GCM under the backup's data key, then hashed with SHA-256 (so a
//! changed object is named before any key is needed; decrypting it, to check its tag and the
//! files inside, needs the key).
//!
//! The GCM nonce is the object's sequence number within the backup (unique per data key,
//! and every backup has its own data key); the associated data is the object's key, so an
//! object moved or swapped inside the store fails authentication instead of restoring into
//! the wrong place.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fmt;
use zeroize::Zeroizing;

/// How objects are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd(i32),
}

impl Compression {
    /// `none`, `zstd` (level 1) or `zstd:LEVEL` (1–19).
    pub fn parse(text: Option<&str>) -> Result<Compression, String> {
        let text = text.unwrap_or("zstd:1").trim();
        if text == "none" {
            return Ok(Compression::None);
        }
        if text == "zstd" {
            return Ok(Compression::Zstd(1));
        }
        if let Some(level) = text.strip_prefix("zstd:") {
            return match level.parse::<i32>() {
                Ok(l) if (1..=19).contains(&l) => Ok(Compression::Zstd(l)),
                _ => Err(format!("`{level}` is not a zstd level: give 1 to 19")),
            };
        }
        Err(format!(
            "unknown compression `{text}`: give none, zstd or zstd:LEVEL"
        ))
    }

    pub fn name(self) -> String {
        match self {
            Compression::None => "none".into(),
            Compression::Zstd(l) => format!("zstd:{l}"),
        }
    }
}

/// Bytes AES-GCM appends (the authentication tag).
pub const TAG_LEN: usize = 16;

/// A per-backup AES-256 data key.
pub struct DataKey(pub Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> DataKey {
        use rand::RngCore;
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        DataKey(key)
    }
}

/// AES-256-GCM under one key, from ring: its VAES/AVX-512 code encrypted 7.8 GB/s on this
/// project's 2-core machine where the RustCrypto `aes-gcm` crate managed 1.2 GB/s (measured
/// 2026-11-30), which had made encryption the largest cost of backing up data that does not
/// compress. The output is standard GCM (ciphertext ‖ 16-byte tag), the same bytes as before.
#[derive(Clone)]
pub(super) struct Gcm(LessSafeKey);

impl Gcm {
    pub(super) fn new(key: &[u8; 32]) -> Gcm {
        // The only failure is a key of the wrong length, which the type rules out.
        match UnboundKey::new(&AES_256_GCM, key) {
            Ok(k) => Gcm(LessSafeKey::new(k)),
            Err(_) => unreachable!("AES-256 takes a 32-byte key"),
        }
    }

    /// Encrypts `buf` in place and appends the tag.
    pub(super) fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>) -> bool {
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf)
            .is_ok()
    }

    /// The plaintext of `ciphertext ‖ tag`, decrypted in the same buffer; `None` when the tag
    /// does not match.
    pub(super) fn open(&self, nonce: [u8; 12], aad: &[u8], mut sealed: Vec<u8>) -> Option<Vec<u8>> {
        let len = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed,
            )
            .ok()?
            .len();
        sealed.truncate(len);
        Some(sealed)
    }
}

/// Compresses and encrypts objects of one backup, and reverses it.
#[derive(Clone)]
pub struct Codec {
    compression: Compression,
    cipher: Option<Gcm>,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Codec({}, encrypted: {})",
            self.compression.name(),
            self.cipher.is_some()
        )
    }
}

/// An object ready to store.
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub sha256: String,
    /// Stored without compression although the backup compresses: zstd would not shrink it.
    pub uncompressed: bool,
}

/// Samples taken to decide whether an object is worth compressing.
const SAMPLES: usize = 3;
const SAMPLE_LEN: usize = 32 * 1024;

/// Already-compressed or random data (TOAST-compressed values, encrypted columns, images)
/// costs zstd about a CPU-second per GB for nothing: sample the start, middle and end, and
/// skip compression when none of them shrinks by 5 %.
fn incompressible(raw: &[u8], level: i32) -> bool {
    if raw.len() < SAMPLES * SAMPLE_LEN * 2 {
        return false;
    }
    let step = (raw.len() - SAMPLE_LEN) / (SAMPLES - 1);
    let mut scratch = Vec::with_capacity(zstd::zstd_safe::compress_bound(SAMPLE_LEN));
    (0..SAMPLES).all(|i| {
        let sample = &raw[i * step..i * step + SAMPLE_LEN];
        scratch.clear();
        with_compressor(&SAMPLE_CONTEXT, level, |c| {
            c.compress_to_buffer(sample, &mut scratch)
        })
        .map(|len| len * 100 > sample.len() * 95)
        .unwrap_or(false)
    })
}

type Context = RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>>;

thread_local! {
    /// This thread's zstd contexts and their level, one for objects and one for samples. A
    /// context is a few MB of tables that zstd allocates and zeroes: made anew for every 8 MiB
    /// object (and every sample), it cost a third of the backup's page faults, which are slow
    /// on virtual machines that back guest memory lazily. Two, because zstd sizes a context's
    /// tables to its input and reallocates them when the size changes. Encoding runs on
    /// tokio's blocking threads, which end after 10 s idle and take their contexts with them.
    static OBJECT_CONTEXT: Context = const { RefCell::new(None) };
    static SAMPLE_CONTEXT: Context = const { RefCell::new(None) };
}

/// Runs `f` with one of this thread's zstd contexts, at `level`.
fn with_compressor<T>(
    context: &'static std::thread::LocalKey<Context>,
    level: i32,
    f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    context.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some((l, compressor)) if *l == level => f(compressor),
            _ => {
                let (_, compressor) = slot.insert((level, zstd::bulk::Compressor::new(level)?));
                f(compressor)
            }
        }
    })
}

/// Why stored bytes could not be turned back into the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The GCM tag does not match: the object was changed, moved, or the key is wrong.
    Authentication,
    /// The zstd frame is damaged.
    Decompression(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Authentication => write!(
                f,
                "the AES-GCM authentication tag does not match (the object was changed or moved)"
            ),
            DecodeError::Decompression(e) => write!(f, "the zstd data is damaged: {e}"),
        }
    }
}

fn nonce(sequence: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&sequence.to_be_bytes());
    n
}

/// The capacity a buffer needs to hold `raw_len` bytes once encoded, whatever the codec:
/// zstd's bound for incompressible input, and the GCM tag.
pub fn buffer_capacity(raw_len: usize) -> usize {
    zstd::zstd_safe::compress_bound(raw_len) + TAG_LEN
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Codec {
    pub fn new(compression: Compression, key: Option<&DataKey>) -> Codec {
        Codec {
            compression,
            cipher: key.map(|k| Gcm::new(&k.0)),
        }
    }

    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Raw bytes → stored bytes. CPU-bound: call from a blocking thread. Compresses into
    /// `out` (any buffer; one with [`buffer_capacity`] for `raw`'s length is used without
    /// growing it) and encrypts in place (the compressed bytes, or `raw` itself when it is
    /// stored uncompressed: give it [`TAG_LEN`] spare capacity), so a gigabyte costs no extra
    /// allocation or copy. Returns the buffer it did not use, for reuse.
    pub fn encode(
        &self,
        raw: Vec<u8>,
        mut out: Vec<u8>,
        sequence: u64,
        key: &str,
    ) -> std::io::Result<(Encoded, Vec<u8>)> {
        let compressed = match self.compression {
            Compression::None => false,
            Compression::Zstd(level) if incompressible(&raw, level) => false,
            Compression::Zstd(level) => {
                out.clear();
                out.reserve(buffer_capacity(raw.len()));
                with_compressor(&OBJECT_CONTEXT, level, |c| {
                    c.compress_to_buffer(&raw[..], &mut out)
                })?;
                true
            }
        };
        let uncompressed = !compressed && self.compression != Compression::None;
        let (mut bytes, spare) = if compressed { (out, raw) } else { (raw, out) };
        if let Some(cipher) = &self.cipher {
            if !cipher.seal(nonce(sequence), key.as_bytes(), &mut bytes) {
                return Err(std::io::Error::other("AES-GCM encryption failed"));
            }
        }
        let sha256 = sha256_hex(&bytes);
        Ok((
            Encoded {
                bytes,
                sha256,
                uncompressed,
            },
            spare,
        ))
    }

    /// Stored bytes → raw bytes; `raw_len` (from the catalogue) bounds decompression;
    /// `uncompressed` is the object's flag from the catalogue. Decrypts in the stored buffer
    /// and returns it when nothing is left to decompress (server-compressed archives, `none`):
    /// no copy of the object on the restore path.
    pub fn decode(
        &self,
        stored: Vec<u8>,
        sequence: u64,
        key: &str,
        raw_len: usize,
        uncompressed: bool,
    ) -> Result<Vec<u8>, DecodeError> {
        let plain = match &self.cipher {
            Some(cipher) => cipher
                .open(nonce(sequence), key.as_bytes(), stored)
                .ok_or(DecodeError::Authentication)?,
            None => stored,
        };
        let raw = match self.compression {
            Compression::Zstd(_) if !uncompressed => zstd::bulk::decompress(&plain, raw_len)
                .map_err(|e| DecodeError::Decompression(e.to_string()))?,
            _ => plain,
        };
        if raw.len() != raw_len {
            return Err(DecodeError::Decompression(format!(
                "{} bytes decoded where the catalogue says {raw_len}",
                raw.len()
            )));
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = DataKey::generate();
        let codec = Codec::new(Compression::Zstd(3), Some(&key));
        let raw: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (enc, _) = codec.encode(raw.clone(), Vec::new(), 7, "a/b").unwrap();
        assert!(enc.bytes.len() < raw.len());
        assert_eq!(
            codec
                .decode(enc.bytes.clone(), 7, "a/b", raw.len(), false)
                .unwrap(),
            raw
        );
        assert!(!enc.uncompressed);
        // Moved object (other key or position) and a flipped bit fail authentication.
        assert_eq!(
            codec.decode(enc.bytes.clone(), 7, "a/c", raw.len(), false),
            Err(DecodeError::Authentication)
        );
        assert_eq!(
            codec.decode(enc.bytes.clone(), 8, "a/b", raw.len(), false),
            Err(DecodeError::Authentication)
        );
        let mut flipped = enc.bytes.clone();
        flipped[10] ^= 1;
        assert_eq!(
            codec.decode(flipped.clone(), 7, "a/b", raw.len(), false),
            Err(DecodeError::Authentication)
        );
        let other = Codec::new(Compression::Zstd(3), Some(&DataKey::generate()));
        assert_eq!(
            other.decode(enc.bytes.clone(), 7, "a/b", raw.len(), false),
            Err(DecodeError::Authentication)
        );
    }

    /// Standard GCM (test case 14 of McGrew and Viega's GCM specification): backups written
    /// with another AES-GCM implementation read the same.
    #[test]
    fn gcm_is_the_standard_one() {
        let gcm = Gcm::new(&[0u8; 32]);
        let mut buf = vec![0u8; 16];
        assert!(gcm.seal([0u8; 12], b"", &mut buf));
        assert_eq!(
            hex::encode(&buf),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
        assert_eq!(gcm.open([0u8; 12], b"", buf.clone()), Some(vec![0u8; 16]));
        assert_eq!(gcm.open([0u8; 12], b"x", buf), None);
    }

    #[test]
    fn random_data_is_stored_uncompressed() {
        use rand::RngCore;
        let key = DataKey::generate();
        let codec = Codec::new(Compression::Zstd(1), Some(&key));
        let mut raw = vec![0u8; 1 << 20];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let (enc, _) = codec.encode(raw.clone(), Vec::new(), 1, "k").unwrap();
        assert!(enc.uncompressed);
        assert_eq!(enc.bytes.len(), raw.len() + 16, "ciphertext and tag only");
        assert_eq!(
            codec
                .decode(enc.bytes.clone(), 1, "k", raw.len(), true)
                .unwrap(),
            raw
        );
        // Random bytes with a compressible middle part are still compressed.
        raw[300_000..800_000].fill(b'x');
        assert!(
            !codec
                .encode(raw.clone(), Vec::new(), 2, "k")
                .unwrap()
                .0
                .uncompressed
        );
    }

    /// The reused per-thread contexts and buffers change nothing in what is stored: each
    /// object is exactly what a fresh zstd context makes of it, at whatever level, whatever
    /// the buffer held before.
    #[test]
    fn reused_contexts_and_buffers_encode_as_fresh_ones() {
        let raw: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| (i / 7 % 1009).to_le_bytes())
            .collect();
        let mut out = vec![0xAB; 123];
        for level in [1, 3, 1, 19, 1] {
            let codec = Codec::new(Compression::Zstd(level), None);
            let (enc, spare) = codec.encode(raw.clone(), out, 5, "k").unwrap();
            assert!(!enc.uncompressed);
            assert_eq!(enc.bytes, zstd::bulk::compress(&raw, level).unwrap());
            assert_eq!(
                codec.decode(enc.bytes.clone(), 5, "k", raw.len(), false),
                Ok(raw.clone())
            );
            assert_eq!(spare, raw, "the raw buffer comes back untouched");
            out = enc.bytes;
        }
    }

    #[test]
    fn plain_and_compression_names() {
        let codec = Codec::new(Compression::None, None);
        let (enc, _) = codec.encode(b"hello".to_vec(), Vec::new(), 0, "k").unwrap();
        assert_eq!(enc.bytes, b"hello");
        assert_eq!(enc.sha256, sha256_hex(b"hello"));
        assert_eq!(
            Compression::parse(Some("zstd:19")),
            Ok(Compression::Zstd(19))
        );
        assert_eq!(Compression::parse(None), Ok(Compression::Zstd(1)));
        assert!(Compression::parse(Some("zstd:0")).is_err());
        assert!(Compression::parse(Some("gzip")).is_err());
    }
}
