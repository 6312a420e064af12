//! Which layer blobs can be extracted (from their media type), and how a blob's tar is stored
//! (from its first bytes).
use std::io::{self, Read};

/// How a layer blob's tar is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    /// A plain tar, as OCI's `…layer.v1.tar` and `…layer.nondistributable.v1.tar` say.
    Uncompressed,
}

/// Whether pkgr can unpack a layer of `media_type`: a tar, gzip-compressed (`…tar.gzip`,
/// `…tar+gzip`) or not (`…tar`). Anything else (zstd, non-tar artifacts) is refused.
pub fn is_tar_layer(media_type: &str) -> bool {
    media_type.ends_with(".tar.gzip") || media_type.ends_with(".tar+gzip") || media_type.ends_with(".tar")
}

/// A blob with its first two bytes read ahead, which tell gzip (`1f 8b`) from a plain tar, then
/// given back to the reader. As in go-containerregistry (so imgpkg), the bytes decide, not the
/// media type: tools write `…layer.v1.tar` layers that are in fact gzip (go-containerregistry's
/// own `random.Layer` does), and gzip-labelled layers that are plain tars.
pub struct Sniffed<R> {
    head: [u8; 2],
    len: usize,
    pos: usize,
    inner: R,
}

impl<R: Read> Sniffed<R> {
    pub fn new(mut inner: R) -> io::Result<Sniffed<R>> {
        let mut head = [0u8; 2];
        let mut len = 0;
        while len < head.len() {
            match inner.read(&mut head[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Sniffed {
            head,
            len,
            pos: 0,
            inner,
        })
    }

    pub fn compression(&self) -> LayerCompression {
        if self.head[..self.len] == [0x1f, 0x8b] {
            LayerCompression::Gzip
        } else {
            LayerCompression::Uncompressed
        }
    }
}

impl<R: Read> Read for Sniffed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.len {
            let n = buf.len().min(self.len - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::LayerCompression::{Gzip, Uncompressed};
    use super::{Sniffed, is_tar_layer};
    use std::io::Read;

    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn tar_media_types_are_unpackable() {
        for (media_type, expected) in [
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", true),
            ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", true),
            ("application/vnd.oci.image.layer.v1.tar+gzip", true),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                true,
            ),
            ("application/vnd.oci.image.layer.v1.tar", true),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar", true),
            ("application/vnd.oci.image.layer.v1.tar+zstd", false),
            ("application/vnd.oci.image.config.v1+json", false),
        ] {
            assert_eq!(is_tar_layer(media_type), expected, "{media_type}");
        }
    }

    #[test]
    fn the_first_bytes_decide_and_are_given_back() {
        for (blob, expected) in [
            (&b"\x1f\x8b\x08rest"[..], Gzip),
            (&b"ustar-ish"[..], Uncompressed),
            (&b"\x1f"[..], Uncompressed),
            (&b""[..], Uncompressed),
        ] {
            // One byte per read, so the read-ahead must gather the head over several reads.
            let mut sniffed = Sniffed::new(OneByte(blob)).unwrap();
            assert_eq!(sniffed.compression(), expected, "{blob:?}");
            let mut all = Vec::new();
            sniffed.read_to_end(&mut all).unwrap();
            assert_eq!(all, blob);
        }
    }
}
