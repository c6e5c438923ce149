"""The demo patients and orders the playground page and `vertebral-cds demo` use."""
