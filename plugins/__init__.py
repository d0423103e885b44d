"""segue.plugins: segue's built-in plugins, registered by dotted name like any third party's."""
