//! Which links are cut: one-way cuts, partitions and isolation, all undone by a heal.

use std::collections::HashSet;

use crate::Endpoint;

/// The cut links of a network. A link from an endpoint to itself is never cut.
#[derive(Default)]
pub(crate) struct Cuts {
    /// One-way cuts, `(from, to)`.
    links: HashSet<(Endpoint, Endpoint)>,
    /// Endpoints cut off from every other one, including endpoints registered later.
    isolated: HashSet<Endpoint>,
}

impl Cuts {
    /// Cuts the link from `from` to `to`.
    pub(crate) fn cut(&mut self, from: Endpoint, to: Endpoint) {
        if from != to {
            self.links.insert((from, to));
        }
    }

    /// Cuts the links between `a` and `b` both ways.
    pub(crate) fn cut_both(&mut self, a: Endpoint, b: Endpoint) {
        self.cut(a, b);
        self.cut(b, a);
    }

    /// Cuts both ways every link between endpoints of different groups. Two endpoints that share a group (an
    /// endpoint may be listed in several) keep their links.
    pub(crate) fn partition(&mut self, groups: &[Vec<Endpoint>]) {
        for (i, left) in groups.iter().enumerate() {
            for right in &groups[i + 1..] {
                for &a in left {
                    for &b in right {
                        if !groups.iter().any(|g| g.contains(&a) && g.contains(&b)) {
                            self.cut_both(a, b);
                        }
                    }
                }
            }
        }
    }

    /// Cuts `id` off from every other endpoint both ways.
    pub(crate) fn isolate(&mut self, id: Endpoint) {
        self.isolated.insert(id);
    }

    /// Removes every cut and isolation.
    pub(crate) fn heal(&mut self) {
        self.links.clear();
        self.isolated.clear();
    }

    /// Whether datagrams from `from` to `to` must be dropped.
    pub(crate) fn blocks(&self, from: Endpoint, to: Endpoint) -> bool {
        from != to && (self.links.contains(&(from, to)) || self.isolated.contains(&from) || self.isolated.contains(&to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_one_way() {
        let mut cuts = Cuts::default();
        cuts.cut(1, 2);
        assert!(cuts.blocks(1, 2));
        assert!(!cuts.blocks(2, 1));
        cuts.cut_both(2, 3);
        assert!(cuts.blocks(2, 3) && cuts.blocks(3, 2));
    }

    #[test]
    fn partition_cuts_across_groups_only() {
        let mut cuts = Cuts::default();
        cuts.partition(&[vec![1], vec![2, 3]]);
        for (a, b) in [(1, 2), (2, 1), (1, 3), (3, 1)] {
            assert!(cuts.blocks(a, b), "{a}->{b}");
        }
        for (a, b) in [(2, 3), (3, 2), (1, 4), (4, 2)] {
            assert!(!cuts.blocks(a, b), "{a}->{b}");
        }
    }

    #[test]
    fn partition_keeps_links_of_endpoints_sharing_a_group() {
        let mut cuts = Cuts::default();
        cuts.partition(&[vec![1, 2], vec![2, 3]]);
        assert!(cuts.blocks(1, 3) && cuts.blocks(3, 1));
        assert!(!cuts.blocks(1, 2) && !cuts.blocks(2, 3));
    }

    #[test]
    fn isolation_covers_every_other_endpoint_and_heal_undoes_everything() {
        let mut cuts = Cuts::default();
        cuts.isolate(1);
        cuts.cut(2, 3);
        assert!(cuts.blocks(1, 2) && cuts.blocks(9, 1));
        assert!(!cuts.blocks(1, 1));
        cuts.heal();
        assert!(!cuts.blocks(1, 2) && !cuts.blocks(2, 3));
    }
}
