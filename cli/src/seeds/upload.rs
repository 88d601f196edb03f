//! The create-only upload of `bootstrap.netsy` into the cluster's Netsy bucket. Netsy state is
//! never overwritten:
//!
//! 1. the prefix must be empty: any object under it (Netsy's own state, or anything else)
//!    stops the upload — except exactly one object, `<prefix>/bootstrap.netsy` holding the
//!    identical bytes, which means an earlier run already did the work (success, no write);
//! 2. the PUT carries `If-None-Match: *`, so a writer that got there in between wins: then the
//!    object is read back and the same rule applies (identical → success, else refused).
//!
//! The steps go through [`ObjectStore`] (list, get, put-if-none-match), so the logic is tested
//! without a network and does not depend on the S3 client's internals.

use std::future::Future;

use crate::aws::s3::PutOutcome;

/// The three object operations the upload needs.
pub trait ObjectStore {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Keys under `prefix`, at most `max_keys`.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        max_keys: u32,
    ) -> impl Future<Output = Result<Vec<String>, Self::Error>>;
    fn get(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Vec<u8>, Self::Error>>;
    fn put_if_none_match(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<PutOutcome, Self::Error>>;
}

impl ObjectStore for crate::aws::Client {
    type Error = crate::aws::AwsError;
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        max_keys: u32,
    ) -> Result<Vec<String>, Self::Error> {
        self.list_objects(bucket, prefix, max_keys).await
    }
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, Self::Error> {
        Ok(self.get_object(bucket, key).await?.0)
    }
    async fn put_if_none_match(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<PutOutcome, Self::Error> {
        self.put_object_if_none_match(bucket, key, body).await
    }
}

/// What the upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    /// The object was written.
    Created,
    /// The identical object was already there; nothing was written.
    AlreadyThere,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError<E: std::error::Error + Send + Sync + 'static> {
    #[error(
        "S3 prefix s3://{bucket}/{prefix} already contains Netsy state or other objects (e.g. {key}); refusing to seed a cluster that has state: the seed is only for a new, empty Netsy bucket prefix"
    )]
    NotEmpty {
        bucket: String,
        prefix: String,
        key: String,
    },
    #[error(
        "S3 object s3://{bucket}/{key} already exists with different content; refusing to overwrite Netsy state (delete it yourself only if the cluster has never started)"
    )]
    Different { bucket: String, key: String },
    #[error("{0}")]
    Store(#[source] E),
}

/// The object key: `<prefix>/bootstrap.netsy` (prefix trimmed of `/`), or `bootstrap.netsy`.
pub fn bootstrap_key(prefix: &str) -> String {
    match prefix.trim_matches('/') {
        "" => "bootstrap.netsy".to_string(),
        p => format!("{p}/bootstrap.netsy"),
    }
}

/// Uploads `body` create-only (see the module docs).
pub async fn upload<S: ObjectStore>(
    store: &S,
    bucket: &str,
    prefix: &str,
    body: Vec<u8>,
) -> Result<Uploaded, UploadError<S::Error>> {
    let key = bootstrap_key(prefix);
    let list_prefix = match prefix.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let keys = store
        .list(bucket, &list_prefix, 2)
        .await
        .map_err(UploadError::Store)?;
    let same = async || -> Result<Uploaded, UploadError<S::Error>> {
        let there = store.get(bucket, &key).await.map_err(UploadError::Store)?;
        if there == body {
            Ok(Uploaded::AlreadyThere)
        } else {
            Err(UploadError::Different {
                bucket: bucket.to_string(),
                key: key.clone(),
            })
        }
    };
    match keys.as_slice() {
        [] => {}
        [only] if *only == key => return same().await,
        [first, ..] => {
            let other = keys.iter().find(|k| **k != key).unwrap_or(first);
            return Err(UploadError::NotEmpty {
                bucket: bucket.to_string(),
                prefix: list_prefix.trim_end_matches('/').to_string(),
                key: other.clone(),
            });
        }
    }
    match store
        .put_if_none_match(bucket, &key, body.clone())
        .await
        .map_err(UploadError::Store)?
    {
        PutOutcome::Created => Ok(Uploaded::Created),
        PutOutcome::AlreadyExists => same().await,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// A stand-in object store: a map, honouring If-None-Match, counting writes.
    #[derive(Default)]
    struct Mem {
        objects: Mutex<BTreeMap<String, Vec<u8>>>,
        puts: Mutex<u32>,
        /// An object that appears between the list and the put (a racing writer).
        race: Option<(String, Vec<u8>)>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("stand-in error")]
    struct MemError;

    impl ObjectStore for Mem {
        type Error = MemError;
        async fn list(&self, _: &str, prefix: &str, max: u32) -> Result<Vec<String>, MemError> {
            let o = self.objects.lock().unwrap();
            Ok(o.keys()
                .filter(|k| k.starts_with(prefix))
                .take(max as usize)
                .cloned()
                .collect())
        }
        async fn get(&self, _: &str, key: &str) -> Result<Vec<u8>, MemError> {
            self.objects
                .lock()
                .unwrap()
                .get(key)
                .cloned()
                .ok_or(MemError)
        }
        async fn put_if_none_match(
            &self,
            _: &str,
            key: &str,
            body: Vec<u8>,
        ) -> Result<PutOutcome, MemError> {
            let mut o = self.objects.lock().unwrap();
            if let Some((k, v)) = &self.race {
                o.insert(k.clone(), v.clone());
            }
            if o.contains_key(key) {
                return Ok(PutOutcome::AlreadyExists);
            }
            *self.puts.lock().unwrap() += 1;
            o.insert(key.to_string(), body);
            Ok(PutOutcome::Created)
        }
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn keys() {
        assert_eq!(bootstrap_key(""), "bootstrap.netsy");
        assert_eq!(bootstrap_key("/c1/"), "c1/bootstrap.netsy");
    }

    #[test]
    fn create_only() {
        let m = Mem::default();
        assert_eq!(
            run(upload(&m, "b", "c1", b"one".to_vec())).unwrap(),
            Uploaded::Created
        );
        // Again with the same bytes: success, no second write.
        assert_eq!(
            run(upload(&m, "b", "c1", b"one".to_vec())).unwrap(),
            Uploaded::AlreadyThere
        );
        assert_eq!(*m.puts.lock().unwrap(), 1);
        // Other bytes: refused, nothing changed.
        let e = run(upload(&m, "b", "c1", b"two".to_vec()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s3://b/c1/bootstrap.netsy already exists"),
            "{e}"
        );
        assert_eq!(m.objects.lock().unwrap()["c1/bootstrap.netsy"], b"one");
        // A prefix with state: refused, naming an object.
        m.objects
            .lock()
            .unwrap()
            .insert("c2/members.json".into(), b"{}".to_vec());
        let e = run(upload(&m, "b", "c2", b"one".to_vec()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s3://b/c2 already contains") && e.contains("c2/members.json"),
            "{e}"
        );
        // Another cluster's prefix that merely starts alike does not count ("c1x/").
        m.objects
            .lock()
            .unwrap()
            .insert("c3x/bootstrap.netsy".into(), b"x".to_vec());
        assert_eq!(
            run(upload(&m, "b", "c3", b"one".to_vec())).unwrap(),
            Uploaded::Created
        );
    }

    #[test]
    fn racing_writer() {
        for (theirs, ok) in [(b"mine".to_vec(), true), (b"theirs".to_vec(), false)] {
            let m = Mem {
                race: Some(("p/bootstrap.netsy".into(), theirs)),
                ..Default::default()
            };
            let r = run(upload(&m, "b", "p", b"mine".to_vec()));
            assert_eq!(r.is_ok(), ok, "{r:?}");
            assert_eq!(*m.puts.lock().unwrap(), 0);
        }
    }
}
