//! WebSocket (RFC 6455) framing as a byte stream, for the server's websocket clients and
//! for the client's `ws://` / `wss://` URLs.
//!
//! [`WsRead`] turns the frames arriving on a connection into the bytes they carry
//! (unmasking, joining fragments, inflating permessage-deflate messages, answering
//! pings), and [`WsWrite`] turns the bytes written to it into binary frames (masked when
//! the client writes, deflated when negotiated). The NATS protocol runs over the two
//! exactly as over a TCP stream: protocol ops need not line up with frames.
//!
//! The frame layer is written here rather than taken from tungstenite or
//! fastwebsockets: those reject frames with the RSV1 bit (permessage-deflate is not in
//! them), collect whole messages before handing them over, and answer bad frames with
//! their own close codes and texts, where the reference server answers with its own
//! (see `ReadError`). HTTP parsing (httparse), SHA-1 (ring) and deflate (flate2) come from
//! crates.

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub const OP_CONT: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const MASK: u8 = 0x80;
const MAX_CONTROL_PAYLOAD: usize = 125;
/// Smaller writes go out uncompressed (the reference's threshold).
const COMPRESS_THRESHOLD: usize = 64;
/// Frame size for browsers (the reference found they behave better with it).
pub const BROWSER_FRAME_SIZE: usize = 4096;
/// At most this much of one write becomes one frame, so a slow reader's pending bytes
/// shrink in steps as they do over TCP.
const MAX_WRITE_CHUNK: usize = 256 * 1024;

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_NO_STATUS: u16 = 1005;
pub const CLOSE_ABNORMAL: u16 = 1006;
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;
pub const CLOSE_TLS_HANDSHAKE: u16 = 1015;

/// The RFC 6455 GUID appended to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    use base64::Engine as _;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.as_bytes());
    ctx.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref())
}

/// A random `Sec-WebSocket-Key`.
pub fn make_key() -> String {
    use base64::Engine as _;
    let k: [u8; 16] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// Appends a frame header for a payload of `len` bytes; returns the masking key if masked.
pub fn frame_header(
    out: &mut Vec<u8>,
    op: u8,
    first: bool,
    fin: bool,
    compressed: bool,
    mask: bool,
    len: usize,
) -> Option<[u8; 4]> {
    let mut b0 = if first { op } else { OP_CONT };
    if fin {
        b0 |= FIN;
    }
    if compressed && first {
        b0 |= RSV1;
    }
    let m = if mask { MASK } else { 0 };
    out.push(b0);
    if len <= 125 {
        out.push(m | len as u8);
    } else if len < 65536 {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if mask {
        let key: [u8; 4] = rand::random();
        out.extend_from_slice(&key);
        Some(key)
    } else {
        None
    }
}

/// XORs `buf` with `key`, starting at key position `pos`; returns the next position.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], pos: usize) -> usize {
    let mut k = [0u8; 8];
    for (i, b) in k.iter_mut().enumerate() {
        *b = key[(pos + i) & 3];
    }
    let k64 = u64::from_ne_bytes(k);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().unwrap()) ^ k64;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    for (p, b) in (pos..).zip(rest.iter_mut()) {
        *b ^= key[p & 3];
    }
    (pos + buf.len()) & 3
}

/// A whole control frame (payload ≤ 125 bytes).
pub fn control_frame(op: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    let key = frame_header(&mut out, op, true, true, false, mask, payload.len());
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(k) = key {
        apply_mask(&mut out[start..], k, 0);
    }
    out
}

/// A close frame's payload: the status, then the text, cut to fit with "..." as the
/// reference does.
pub fn close_payload(status: u16, text: &str) -> Vec<u8> {
    let mut body = text.as_bytes();
    let cut;
    let mut out = status.to_be_bytes().to_vec();
    if body.len() > MAX_CONTROL_PAYLOAD - 2 {
        cut = [&body[..MAX_CONTROL_PAYLOAD - 5], b"..."].concat();
        body = &cut;
    }
    out.extend_from_slice(body);
    out
}

/// What the reader and the writer of one connection share: control frames the reader
/// owes the peer (pongs, the answer to a close) and whether a close was sent.
#[derive(Default)]
pub struct Control {
    /// Framed control messages to send before the next data.
    frames: Vec<u8>,
    /// The close frame, sent after everything else.
    close: Option<Vec<u8>>,
    close_sent: bool,
}

pub type Shared = Arc<Mutex<Control>>;

/// A broken frame from the peer: the reference's text for it.
#[derive(Debug)]
pub struct ProtocolError {
    pub text: String,
    /// Answered with a protocol-error close frame (frame errors; not inflate errors).
    pub close: bool,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ProtocolError {}

fn proto_err(msg: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        ProtocolError {
            text: msg.into(),
            close: true,
        },
    )
}

fn flate_err(msg: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        ProtocolError {
            text: msg.into(),
            close: false,
        },
    )
}

enum RState {
    /// Waiting for a frame header.
    Header,
    /// Inside a data frame's payload.
    Payload,
}

/// The read half: yields the bytes carried by data frames.
pub struct WsRead<R> {
    inner: R,
    /// Bytes read from the connection, not yet decoded.
    raw: BytesMut,
    /// Decoded bytes not yet handed out (inflated messages).
    out: BytesMut,
    state: RState,
    /// Payload bytes left in the current frame.
    rem: u64,
    key: Option<[u8; 4]>,
    kpos: usize,
    /// The last data frame had FIN (a new message may start).
    final_seen: bool,
    /// The current message is compressed: its payload collects in `cbuf`.
    compressed: bool,
    cbuf: Vec<u8>,
    inflater: Option<flate2::Decompress>,
    /// The peer must mask its frames (server side).
    expect_mask: bool,
    /// The peer's frames are masked (client side: never).
    ctl: Shared,
    /// Control frames we answer are masked (client side).
    mask_replies: bool,
    /// Called when a control frame was queued, so the writer sends it.
    wake: Option<Box<dyn Fn() + Send + Sync>>,
    eof: bool,
    /// An error found after some bytes were handed out: reported on the next read.
    error: Option<io::Error>,
}

impl<R> WsRead<R> {
    /// `leftover`: bytes read past the handshake. `expect_mask`: this is the server side.
    pub fn new(inner: R, leftover: &[u8], expect_mask: bool, ctl: Shared) -> Self {
        let mut raw = BytesMut::with_capacity(64 * 1024);
        raw.extend_from_slice(leftover);
        WsRead {
            inner,
            raw,
            out: BytesMut::new(),
            state: RState::Header,
            rem: 0,
            key: None,
            kpos: 0,
            final_seen: true,
            compressed: false,
            cbuf: Vec::new(),
            inflater: None,
            expect_mask,
            ctl,
            mask_replies: !expect_mask,
            wake: None,
            eof: false,
            error: None,
        }
    }

    /// Sets what wakes the writer when a control frame (pong, close) is owed.
    pub fn on_control(&mut self, f: Box<dyn Fn() + Send + Sync>) {
        self.wake = Some(f);
    }

    fn queue_control(&self, op: u8, payload: &[u8]) {
        let f = control_frame(op, payload, self.mask_replies);
        {
            let mut c = self.ctl.lock();
            if op == OP_CLOSE {
                if c.close_sent || c.close.is_some() {
                    return;
                }
                c.close = Some(f);
            } else {
                c.frames.extend_from_slice(&f);
            }
        }
        if let Some(w) = &self.wake {
            w();
        }
    }

    /// Decodes one frame header from `raw`; false when more bytes are needed.
    fn header(&mut self) -> io::Result<bool> {
        let raw = &self.raw[..];
        if raw.len() < 2 {
            return Ok(false);
        }
        let b0 = raw[0];
        let b1 = raw[1];
        let op = b0 & 0x0f;
        let fin = b0 & FIN != 0;
        let rsv1 = b0 & RSV1 != 0;
        let masked = b1 & MASK != 0;
        if self.expect_mask && !masked {
            return Err(proto_err("mask bit missing"));
        }
        let len7 = (b1 & 0x7f) as u64;
        match op {
            OP_CLOSE | OP_PING | OP_PONG => {
                if len7 > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(proto_err(format!(
                        "control frame length bigger than maximum allowed of {MAX_CONTROL_PAYLOAD} bytes"
                    )));
                }
                if !fin {
                    return Err(proto_err("control frame does not have final bit set"));
                }
            }
            OP_TEXT | OP_BINARY => {
                if !self.final_seen {
                    return Err(proto_err(
                        "new message started before final frame for previous message was received",
                    ));
                }
            }
            OP_CONT => {
                if self.final_seen || rsv1 {
                    return Err(proto_err("invalid continuation frame"));
                }
            }
            _ => return Err(proto_err(format!("unknown opcode {op}"))),
        }
        let mut need = 2;
        let len = match len7 {
            126 => {
                need += 2;
                if raw.len() < need {
                    return Ok(false);
                }
                u16::from_be_bytes([raw[2], raw[3]]) as u64
            }
            127 => {
                need += 8;
                if raw.len() < need {
                    return Ok(false);
                }
                u64::from_be_bytes(raw[2..10].try_into().unwrap())
            }
            n => n,
        };
        let key = if masked {
            if raw.len() < need + 4 {
                return Ok(false);
            }
            let k = [raw[need], raw[need + 1], raw[need + 2], raw[need + 3]];
            need += 4;
            Some(k)
        } else {
            None
        };
        if op >= OP_CLOSE {
            // Control frames are handled whole, once their payload is here.
            let plen = len as usize;
            if raw.len() < need + plen {
                return Ok(false);
            }
            let mut payload = raw[need..need + plen].to_vec();
            if let Some(k) = key {
                apply_mask(&mut payload, k, 0);
            }
            self.raw.advance(need + plen);
            self.control(op, &payload);
            return Ok(true);
        }
        self.raw.advance(need);
        match op {
            OP_TEXT | OP_BINARY => {
                self.final_seen = fin;
                self.compressed = rsv1;
            }
            _ => self.final_seen = fin,
        }
        self.rem = len;
        self.key = key;
        self.kpos = 0;
        self.state = RState::Payload;
        if len == 0 {
            self.end_of_frame()?;
        }
        Ok(true)
    }

    fn control(&mut self, op: u8, payload: &[u8]) {
        match op {
            OP_CLOSE => {
                let mut status = CLOSE_NO_STATUS;
                let mut body = String::new();
                if payload.len() >= 2 {
                    status = u16::from_be_bytes([payload[0], payload[1]]);
                    if payload.len() > 2 {
                        match std::str::from_utf8(&payload[2..]) {
                            Ok(s) => body = s.to_string(),
                            Err(_) => {
                                status = CLOSE_INVALID_PAYLOAD;
                                body = "invalid utf8 body in close frame".into();
                            }
                        }
                    }
                }
                self.queue_control(OP_CLOSE, &close_payload(status, &body));
                self.eof = true;
            }
            OP_PING => self.queue_control(OP_PONG, payload),
            _ => {}
        }
    }

    /// The current frame's payload is all read.
    fn end_of_frame(&mut self) -> io::Result<()> {
        self.state = RState::Header;
        if self.compressed && self.final_seen {
            self.compressed = false;
            let mut input = std::mem::take(&mut self.cbuf);
            // RFC 7692 7.2.2: the sender removed this tail; the reference also adds an
            // empty final block.
            input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff]);
            let d = self
                .inflater
                .get_or_insert_with(|| flate2::Decompress::new(false));
            d.reset(false);
            let mut plain = Vec::with_capacity(input.len() * 3 + 1024);
            let mut pos = 0;
            loop {
                if plain.capacity() - plain.len() < 1024 {
                    plain.reserve(plain.capacity());
                }
                let (bi, bo) = (d.total_in(), d.total_out());
                let st = d
                    .decompress_vec(&input[pos..], &mut plain, flate2::FlushDecompress::Sync)
                    .map_err(|e| flate_err(format!("flate: {e}")))?;
                pos += (d.total_in() - bi) as usize;
                if st == flate2::Status::StreamEnd
                    || (pos >= input.len() && plain.len() < plain.capacity())
                {
                    break;
                }
                if d.total_in() == bi && d.total_out() == bo && plain.len() < plain.capacity() {
                    return Err(flate_err("flate: corrupt input"));
                }
            }
            self.out.extend_from_slice(&plain);
            self.cbuf = Vec::new();
        }
        Ok(())
    }

    /// Takes payload bytes from `raw` into `dst` (or `cbuf` when compressed).
    fn payload_from_raw(&mut self, dst: &mut ReadBuf<'_>) -> io::Result<()> {
        let n = (self.rem.min(self.raw.len() as u64)) as usize;
        if n == 0 {
            return Ok(());
        }
        if self.compressed {
            let start = self.cbuf.len();
            self.cbuf.extend_from_slice(&self.raw[..n]);
            if let Some(k) = self.key {
                self.kpos = apply_mask(&mut self.cbuf[start..], k, self.kpos);
            }
            self.raw.advance(n);
            self.rem -= n as u64;
        } else {
            let n = n.min(dst.remaining());
            if n == 0 {
                return Ok(());
            }
            let filled = dst.filled().len();
            dst.put_slice(&self.raw[..n]);
            if let Some(k) = self.key {
                self.kpos = apply_mask(&mut dst.filled_mut()[filled..], k, self.kpos);
            }
            self.raw.advance(n);
            self.rem -= n as u64;
        }
        if self.rem == 0 {
            self.end_of_frame()?;
        }
        Ok(())
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for WsRead<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        loop {
            if !me.out.is_empty() {
                let n = me.out.len().min(dst.remaining());
                dst.put_slice(&me.out[..n]);
                me.out.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = me.error.take() {
                return Poll::Ready(Err(e));
            }
            if me.eof {
                return Poll::Ready(Ok(()));
            }
            let start = dst.filled().len();
            // Decode what is buffered.
            let mut progress = true;
            while progress && !me.eof && dst.remaining() > 0 && me.out.is_empty() {
                progress = false;
                let r = match me.state {
                    RState::Header => me.header().map(|p| progress = p),
                    RState::Payload => {
                        let before = (me.raw.len(), me.rem);
                        let r = me.payload_from_raw(dst);
                        progress = (me.raw.len(), me.rem) != before;
                        r
                    }
                };
                if let Err(e) = r {
                    // The reference queues a protocol-error close frame for a broken frame.
                    if let Some(pe) = e.get_ref().and_then(|e| e.downcast_ref::<ProtocolError>()) {
                        if pe.close {
                            let body = close_payload(CLOSE_PROTOCOL_ERROR, &pe.text);
                            me.queue_control(OP_CLOSE, &body);
                        }
                    }
                    // What was decoded before the bad frame is still delivered.
                    if dst.filled().len() > start || !me.out.is_empty() {
                        me.error = Some(e);
                        break;
                    }
                    return Poll::Ready(Err(e));
                }
            }
            if dst.filled().len() > start || !me.out.is_empty() || me.eof || me.error.is_some() {
                if dst.filled().len() > start {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // An uncompressed payload with nothing buffered: read it straight into `dst`.
            if matches!(me.state, RState::Payload) && !me.compressed && me.raw.is_empty() {
                let want = (me.rem.min(dst.remaining() as u64)) as usize;
                let mut sub = dst.take(want);
                ready!(Pin::new(&mut me.inner).poll_read(cx, &mut sub))?;
                let n = sub.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                // SAFETY: `sub` filled these bytes of `dst`'s unfilled part.
                unsafe { dst.assume_init(n) };
                dst.advance(n);
                if let Some(k) = me.key {
                    me.kpos = apply_mask(&mut dst.filled_mut()[start..start + n], k, me.kpos);
                }
                me.rem -= n as u64;
                if me.rem == 0 {
                    me.end_of_frame()?;
                }
                return Poll::Ready(Ok(()));
            }
            // Read more frames.
            if me.raw.capacity() - me.raw.len() < 4096 {
                me.raw.reserve(64 * 1024);
            }
            let spare = me.raw.spare_capacity_mut();
            let mut rb = ReadBuf::uninit(spare);
            ready!(Pin::new(&mut me.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            // SAFETY: the read initialised `n` bytes of the spare capacity.
            unsafe { me.raw.set_len(me.raw.len() + n) };
        }
    }
}

/// How the writer frames what it is given.
#[derive(Clone, Copy, Default)]
pub struct WriteConfig {
    /// Mask every frame (client side).
    pub mask: bool,
    /// permessage-deflate was negotiated.
    pub compress: bool,
    /// Limit frames to `BROWSER_FRAME_SIZE` (the peer is a browser).
    pub browser: bool,
    /// Compressed messages go in one frame (Safari).
    pub no_compressed_fragments: bool,
}

/// Decides the close frame (status, text) sent at shutdown; none: just close.
pub type CloseFn = Box<dyn Fn() -> Option<(u16, String)> + Send + Sync>;

/// The write half: every write becomes one binary message.
pub struct WsWrite<W> {
    inner: W,
    cfg: WriteConfig,
    ctl: Shared,
    /// Framed bytes not yet taken by the connection.
    pending: Vec<u8>,
    sent: usize,
    deflater: Option<flate2::Compress>,
    /// The close status and text to send on shutdown (none: just close).
    on_close: Option<CloseFn>,
}

impl<W> WsWrite<W> {
    pub fn new(inner: W, cfg: WriteConfig, ctl: Shared) -> Self {
        WsWrite {
            inner,
            cfg,
            ctl,
            pending: Vec::with_capacity(4096),
            sent: 0,
            deflater: None,
            on_close: None,
        }
    }

    /// Sets what decides the close frame sent at shutdown.
    pub fn on_close(&mut self, f: CloseFn) {
        self.on_close = Some(f);
    }

    fn take_control(&mut self) {
        let mut c = self.ctl.lock();
        if !c.frames.is_empty() {
            self.pending.append(&mut c.frames);
        }
    }

    fn frame(&mut self, data: &[u8]) {
        let mask = self.cfg.mask;
        if self.cfg.compress && data.len() > COMPRESS_THRESHOLD {
            let c = self
                .deflater
                .get_or_insert_with(|| flate2::Compress::new(flate2::Compression::fast(), false));
            c.reset();
            let mut z = Vec::with_capacity(data.len() / 2 + 64);
            let mut pos = 0;
            loop {
                if z.capacity() - z.len() < 64 {
                    z.reserve(z.capacity().max(1024));
                }
                let before = c.total_in();
                // Errors only come from misuse of the stream; stop with what there is.
                if c.compress_vec(&data[pos..], &mut z, flate2::FlushCompress::Sync)
                    .is_err()
                {
                    break;
                }
                pos += (c.total_in() - before) as usize;
                if pos >= data.len() && z.len() < z.capacity() {
                    break;
                }
            }
            if z.ends_with(&[0, 0, 0xff, 0xff]) {
                z.truncate(z.len() - 4);
            }
            let max = if self.cfg.browser && !self.cfg.no_compressed_fragments {
                BROWSER_FRAME_SIZE
            } else {
                usize::MAX
            };
            let mut rest = &z[..];
            let mut first = true;
            loop {
                let n = rest.len().min(max);
                let fin = n == rest.len();
                let key = frame_header(&mut self.pending, OP_BINARY, first, fin, true, mask, n);
                let start = self.pending.len();
                self.pending.extend_from_slice(&rest[..n]);
                if let Some(k) = key {
                    apply_mask(&mut self.pending[start..], k, 0);
                }
                rest = &rest[n..];
                first = false;
                if fin {
                    break;
                }
            }
            return;
        }
        let max = if self.cfg.browser {
            BROWSER_FRAME_SIZE
        } else {
            usize::MAX
        };
        for chunk in data.chunks(max) {
            let key = frame_header(
                &mut self.pending,
                OP_BINARY,
                true,
                true,
                false,
                mask,
                chunk.len(),
            );
            let start = self.pending.len();
            self.pending.extend_from_slice(chunk);
            if let Some(k) = key {
                apply_mask(&mut self.pending[start..], k, 0);
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> WsWrite<W> {
    /// Writes `pending` out; Ready(Ok) once it all went.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        if self.pending.capacity() > 1024 * 1024 {
            self.pending.shrink_to(64 * 1024);
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for WsWrite<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        ready!(me.drain(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        me.take_control();
        let n = data.len().min(MAX_WRITE_CHUNK);
        me.frame(&data[..n]);
        // Start sending now; what the connection does not take yet goes on the next call.
        if let Poll::Ready(Err(e)) = me.drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        ready!(me.drain(cx))?;
        me.take_control();
        ready!(me.drain(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        ready!(me.drain(cx))?;
        me.take_control();
        let close = {
            let mut c = me.ctl.lock();
            if c.close_sent {
                None
            } else {
                c.close_sent = true;
                match c.close.take() {
                    Some(f) => Some(f),
                    None => me.on_close.as_ref().and_then(|f| f()).map(|(st, text)| {
                        control_frame(OP_CLOSE, &close_payload(st, &text), me.cfg.mask)
                    }),
                }
            }
        };
        if let Some(f) = close {
            me.pending.extend_from_slice(&f);
        }
        ready!(me.drain(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn accept_key_of_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn mask_positions_carry_over() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..37).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut parts = data.clone();
        let p = apply_mask(&mut parts[..5], key, 0);
        let p = apply_mask(&mut parts[5..22], key, p);
        apply_mask(&mut parts[22..], key, p);
        assert_eq!(whole, parts);
    }

    async fn roundtrip(cfg: WriteConfig, msgs: &[&[u8]]) -> Vec<u8> {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut w = WsWrite::new(a, cfg, Shared::default());
        for m in msgs {
            w.write_all(m).await.unwrap();
        }
        w.shutdown().await.unwrap();
        let mut r = WsRead::new(b, &[], cfg.mask, Shared::default());
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn frames_round_trip_masked_compressed_and_fragmented() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let msgs: [&[u8]; 3] = [b"PING\r\n", &big, b"PUB foo 2\r\nhi\r\n"];
        let want: Vec<u8> = msgs.concat();
        for mask in [false, true] {
            for compress in [false, true] {
                for browser in [false, true] {
                    let cfg = WriteConfig {
                        mask,
                        compress,
                        browser,
                        no_compressed_fragments: false,
                    };
                    assert_eq!(roundtrip(cfg, &msgs).await, want);
                }
            }
        }
    }
}
