//! Which layer blobs can be extracted, and how they are compressed, from their media type.

/// How a layer blob's tar is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    /// A plain tar, as OCI's `…layer.v1.tar` and `…layer.nondistributable.v1.tar`.
    Uncompressed,
}

impl LayerCompression {
    /// `…tar.gzip` (Docker) and `…tar+gzip` (OCI) are gzip; `…tar` is a plain tar. Anything else
    /// (zstd, non-tar artifacts) is `None`: pkgr cannot unpack it.
    pub fn of_media_type(media_type: &str) -> Option<LayerCompression> {
        if media_type.ends_with(".tar.gzip") || media_type.ends_with(".tar+gzip") {
            Some(LayerCompression::Gzip)
        } else if media_type.ends_with(".tar") {
            Some(LayerCompression::Uncompressed)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LayerCompression::{self, Gzip, Uncompressed};

    #[test]
    fn media_types_map_to_compressions() {
        for (media_type, expected) in [
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Some(Gzip)),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Some(Gzip),
            ),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Some(Gzip)),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Some(Gzip),
            ),
            ("application/vnd.oci.image.layer.v1.tar", Some(Uncompressed)),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                Some(Uncompressed),
            ),
            ("application/vnd.oci.image.layer.v1.tar+zstd", None),
            ("application/vnd.oci.image.config.v1+json", None),
        ] {
            assert_eq!(
                LayerCompression::of_media_type(media_type),
                expected,
                "{media_type}"
            );
        }
    }
}
