"""The dashboard's Streamlit entry point (`billing dashboard` runs it): one page per question."""

import streamlit as st

from billing.dashboard import customer, data_quality, receivables, revenue

st.set_page_config(page_title="Billing dashboard", layout="wide")
st.navigation(
    [
        st.Page(revenue.render, title="Revenue", url_path="revenue", default=True),
        st.Page(receivables.render, title="Receivables", url_path="receivables"),
        st.Page(customer.render, title="Customer", url_path="customer"),
        st.Page(data_quality.render, title="Data quality", url_path="data_quality"),
    ]
).run()
