//! Running work items on the calling thread, or on up to `--max-concurrent` scoped threads that
//! take the next item as they finish one (as many at once as the governor allows, when there
//! is one). The first error stops the others from starting more.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

use super::governor::Governor;

/// Runs `work` on every item, on `workers` threads when that is more than one (none are started
/// otherwise), each waiting for the governor's permit before an item; returns the results in
/// the order of `items`, or the first error.
pub fn run<T: Sync, R: Send>(
    items: &[T],
    workers: u32,
    governor: Option<&Governor>,
    work: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let workers = (workers as usize).min(items.len());
    if workers <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while failure.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
                    let _permit = governor.map(Governor::permit);
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    match work(item) {
                        Ok(result) => {
                            results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result)
                        }
                        Err(error) => {
                            failure
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(error);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(error);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..50).collect();
        for workers in [1, 4] {
            let doubled = run(&items, workers, None, |n| Ok(n * 2)).unwrap();
            assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_error_is_returned() {
        let items: Vec<u64> = (0..20).collect();
        let failed = run(&items, 3, None, |n| {
            if *n == 7 {
                Err(Error::Network("lost".into()))
            } else {
                Ok(*n)
            }
        });
        assert_eq!(failed.unwrap_err().to_string(), "lost");
    }

    #[test]
    fn work_runs_on_several_threads() {
        let items: Vec<u64> = (0..8).collect();
        let threads = Mutex::new(std::collections::HashSet::new());
        run(&items, 4, None, |_| {
            threads.lock().unwrap().insert(std::thread::current().id());
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(())
        })
        .unwrap();
        assert!(threads.lock().unwrap().len() > 1);
        let main = std::thread::current().id();
        let one = Mutex::new(Vec::new());
        run(&items, 1, None, |_| {
            one.lock().unwrap().push(std::thread::current().id());
            Ok(())
        })
        .unwrap();
        assert!(
            one.lock().unwrap().iter().all(|id| *id == main),
            "with one worker no thread is started"
        );
    }
}
