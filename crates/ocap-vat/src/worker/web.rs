//! Host functions behind the `crypto` endowment (`getRandomValues`, `randomUUID`,
//! `SubtleCrypto.digest`: js/src/web/crypto.js) and the UTF-8 codec of `fetch` bodies
//! (js/src/web/fetch.js). They run synchronously on the vat thread and hold no state.

use rquickjs::{ArrayBuffer, Ctx, Function, Object, Value};

use super::js_error::throw;

/// Copy the bytes of an ArrayBuffer argument.
pub(super) fn buffer_bytes(ctx: &Ctx<'_>, value: &Value<'_>, what: &str) -> rquickjs::Result<Vec<u8>> {
    let buffer = ArrayBuffer::from_value(value.clone())
        .ok_or_else(|| throw(ctx, &format!("{what}: expected an ArrayBuffer")))?;
    // SAFETY: the slice is copied at once, before any JS can run and detach
    // or resize the buffer.
    let bytes = unsafe { buffer.as_bytes() }.ok_or_else(|| throw(ctx, &format!("{what}: detached ArrayBuffer")))?;
    Ok(bytes.to_vec())
}

/// Installs `randomBytes(n)`, `digest(algorithm, buffer)`, `utf8Encode(text)` and
/// `utf8Decode(buffer)` on the host object.
pub(super) fn add_host_functions<'js>(ctx: &Ctx<'js>, host: &Object<'js>) -> rquickjs::Result<()> {
    host.set(
        "randomBytes",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, n: f64| -> rquickjs::Result<ArrayBuffer<'js>> {
            if !(0.0..=65536.0).contains(&n) {
                return Err(throw(&ctx, "randomBytes: at most 65536 bytes"));
            }
            let mut bytes = vec![0u8; n as usize];
            getrandom::fill(&mut bytes).map_err(|e| throw(&ctx, &format!("no randomness from the OS: {e}")))?;
            ArrayBuffer::new(ctx, bytes)
        })?,
    )?;
    host.set(
        "digest",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, algorithm: String, data: Value<'js>| -> rquickjs::Result<ArrayBuffer<'js>> {
                use sha2::Digest;
                let bytes = buffer_bytes(&ctx, &data, "digest")?;
                let hash: Vec<u8> = match algorithm.as_str() {
                    "SHA-1" => sha1::Sha1::digest(&bytes).to_vec(),
                    "SHA-256" => sha2::Sha256::digest(&bytes).to_vec(),
                    "SHA-384" => sha2::Sha384::digest(&bytes).to_vec(),
                    "SHA-512" => sha2::Sha512::digest(&bytes).to_vec(),
                    other => return Err(throw(&ctx, &format!("Unrecognized digest algorithm: {other}"))),
                };
                ArrayBuffer::new(ctx, hash)
            },
        )?,
    )?;
    host.set(
        "utf8Encode",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, text: String| ArrayBuffer::new(ctx, text.into_bytes()))?,
    )?;
    host.set(
        "utf8Decode",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, data: Value<'js>| -> rquickjs::Result<String> {
            let bytes = buffer_bytes(&ctx, &data, "utf8Decode")?;
            Ok(String::from_utf8_lossy(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes)).into_owned())
        })?,
    )?;
    Ok(())
}
