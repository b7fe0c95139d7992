{#- Every input row with `quarantine_reason`: NULL for a usable row, else the first rule
    it breaks, in declaration order (the rules come from the declaration: unreadable
    values, ranges, unknown levels). Derived columns are computed here, from the typed
    values, so that their ranges are rules too. Missing values are not a reason: they are
    imputed downstream.
    Narrow on purpose: the typed values only. The cleaned text (`<name>__text`) serves the
    rules here, and the text as exported is joined back by customer_quarantine for its own
    rows (at 10 million rows, writing both for every row cost most of the build). -#}
{%- set decl = declaration() -%}
{%- set attributes = declared_attributes() -%}
{%- set rules = quarantine_rules() -%}

with

customers as (

    select * from {{ ref('stg_customers') }}

),

rejected_rows as (

    select * from {{ ref('stg_customers_rejected') }}

),

reference_date as (

    -- the date derivations count from: declared, else the latest date in the file (one row).
    -- Staging is read again here rather than through `customers`: an engine may materialise
    -- a CTE read twice, every column of every row, to spare a scan of the date columns.
    {% if decl.as_of -%}
    select cast({{ sql_string(decl.as_of) }} as date) as as_of
    {%- elif decl.date_columns -%}
    select
        greatest({% for name in decl.date_columns %}max({{ name }}){{ ", " if not loop.last }}{% endfor %}) as as_of

    from {{ ref('stg_customers') }}
    {%- else -%}
    select cast(null as date) as as_of
    {%- endif %}

),

derived as (

    select
        customers.*,
        {%- for column in decl.derived %}
        cast({{ derived_value(column, 'reference_date.as_of') }} as {{ column_type(column) }}) as {{ column.name }},
        {%- endfor %}
        reference_date.as_of

    from customers
    cross join reference_date

),

validated as (

    select
        *,
        case
            when coalesce(
                {%- for column in decl.columns %}
                {{ column.name }}__text{{ "," if not loop.last }}
                {%- endfor %}
            ) is null then 'empty_row'
            when customer_id is null then 'missing_customer_id'
            {%- for rule in rules %}
            when {{ rule.test }} then {{ sql_string(rule.reason) }}
            {%- endfor %}
        end as quarantine_reason

    from derived

),

malformed as (

    -- records that could not be split into fields: no value to validate, kept as raw text
    select * from rejected_rows

),

final as (

    -- the two branches column for column (no engine-specific "union by name")
    select
        source_row_number,
        {%- for column in decl.columns %}
        {{ column.name }},
        {%- endfor %}
        {%- for column in decl.derived %}
        {{ column.name }},
        {%- endfor %}
        as_of,
        quarantine_reason,
        cast(null as bigint) as source_line_number,
        cast(null as {{ dbt.type_string() }}) as source_line

    from validated

    union all

    select
        source_row_number,
        {%- for column in decl.columns %}
        cast(null as {{ column_type(column) }}),
        {%- endfor %}
        {%- for column in decl.derived %}
        cast(null as {{ column_type(column) }}),
        {%- endfor %}
        cast(null as date),
        'malformed_row',
        source_line_number,
        source_line

    from malformed

)

select * from final
