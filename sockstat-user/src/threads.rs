//! Work split over threads: the first item on the calling thread, each other one on a
//! thread of its own, the results in the items' order. The threads are scoped (the work
//! borrows freely) and start where their creator is (its network namespace, `-N`
//! included); a panic in any of them is the caller's.

/// `work` of each item, each on a thread (the first on this one), results in order.
pub fn each_on_a_thread<T: Send, R: Send>(items: impl IntoIterator<Item = T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let work = &work;
        let mut items = items.into_iter();
        let Some(first) = items.next() else { return Vec::new() };
        let others: Vec<_> = items.map(|item| scope.spawn(move || work(item))).collect();
        let mut results = Vec::with_capacity(others.len() + 1);
        results.push(work(first));
        results.extend(others.into_iter().map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))));
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_items_order_each_from_its_own_thread() {
        let here = std::thread::current().id();
        let got = each_on_a_thread(0..5, |i| (i * 10, std::thread::current().id()));
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 10, 20, 30, 40]);
        assert_eq!(got[0].1, here, "the first on the calling thread");
        let mut ids: Vec<_> = got.iter().map(|r| r.1).collect();
        ids.dedup();
        assert_eq!(ids.len(), 5, "each on a thread of its own");
        assert!(each_on_a_thread(Vec::<u8>::new(), |i| i).is_empty());
    }
}
