with

validated as (

    select * from {{ ref('int_customers_validated') }}

),

quarantine as (

    select * from {{ ref('customer_quarantine') }}

),

customers as (

    select * from {{ ref('int_customers_imputed') }}

),

accounting as (

    select 'accounting' as section, 'rows_read' as item, count(*) as rows, 1 as item_order
    from validated
    union all
    select 'accounting', 'customers_kept', count(*), 2
    from customers
    union all
    select 'accounting', 'duplicate_records_merged', coalesce(sum(records_merged - 1), 0), 3
    from customers
    union all
    select 'accounting', 'rows_quarantined', count(*), 4
    from quarantine

),

quarantine_reasons as (

    select 'quarantine' as section, quarantine_reason as item, count(*) as rows, 10 as item_order
    from quarantine
    group by quarantine_reason

),

imputed_counts as (

    select
        {%- for column in attribute_columns() if column.impute != 'none' %}
        coalesce(count_if(is_{{ column.name }}_imputed), 0) as {{ column.name }},
        {%- endfor %}
        count(*) as customers

    from customers

),

imputations as (

    -- one row per imputed column (the declaration's names), without an engine-specific unpivot
    {%- for column in attribute_columns() if column.impute != 'none' %}
    select 'imputation' as section, {{ sql_string(column.name) }} as item, {{ column.name }} as rows, 20 as item_order
    from imputed_counts
    union all
    {%- endfor %}
    select 'imputation', 'none', 0, 20
    from imputed_counts
    where false

),

unioned as (

    select * from accounting
    union all
    select * from quarantine_reasons
    union all
    select * from imputations

),

final as (

    select
        section,
        item,
        cast(rows as bigint) as rows,
        cast(row_number() over (order by item_order, rows desc, item) as bigint) as display_order

    from unioned

)

select * from final
