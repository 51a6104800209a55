//! Reading an answer's body without letting the server decide how much memory it takes: read
//! as it streams in, up to a bound, never whole.

/// The largest answer read: far above any page this tool asks for (100 issues, 1,000
/// changelogs), far below what would hurt the machine.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Of an error answer only the start is read: the message shown is at most 2 KiB anyway.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// A body read up to a bound.
pub struct Capped {
    pub bytes: Vec<u8>,
    /// The body went on past the bound (or said it would, in `Content-Length`); what was read
    /// is its start.
    pub cut: bool,
}

/// Read `resp`'s body, at most `limit` bytes of it. With `whole_or_nothing`, a declared
/// length over the limit is not read at all (an answer to decode is useless cut); without, the
/// start is read (an error's message).
pub async fn read(
    mut resp: reqwest::Response,
    limit: usize,
    whole_or_nothing: bool,
) -> Result<Capped, reqwest::Error> {
    let declared = resp.content_length().unwrap_or(0);
    if whole_or_nothing && declared > limit as u64 {
        return Ok(Capped {
            bytes: Vec::new(),
            cut: true,
        });
    }
    let mut bytes = Vec::with_capacity(declared.min(limit as u64) as usize);
    while let Some(chunk) = resp.chunk().await? {
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            // Dropping the response closes the connection: the rest is never read.
            return Ok(Capped { bytes, cut: true });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Capped { bytes, cut: false })
}
